"""The entity test matrix (NetBox style): one contract, every registered entity, both skins,
every built-in role.

- skins.py: the `Skin` protocol (create, get, update, delete, list, history) with RestSkin and
  GraphQLSkin; each checks its own wire format and answers a skin-neutral `Outcome`.
- names.py: REST and GraphQL names derived from an EntitySpec (type, roots, inputs).
- values.py: valid field values from each FieldSpec (kind, limits, choices).
- oracle.py: what policies/roles.toml allows, read independently of backend/policy.
- world.py: the shared tenant, users per role, records made parents-first.
- test_entity_contract.py: the matrix itself.

A new entity is covered by registering it in backend/crm/registry.py (and its lines in
policies/roles.toml); a field of a new kind needs one sample in values.py.
"""
