"""Tenant custom fields: definitions per tenant and entity, values in each record's `custom`
column, policed as `<entity>.cf_<key>` objects (see README, "Custom fields")."""
