-- Distribute Caravan's schema on a Citus cluster (generated: python -m backend.db.citus).
-- Run once as the database owner on the coordinator, after `caravan migrate`, before any
-- tenant data is loaded (or Citus copies existing rows into the shards as it goes).
-- Every tenant table is distributed by tenant_id and co-located, so each tenant's rows, keys
-- and links live on one node; the global tables become reference tables.

BEGIN;
SELECT create_reference_table('auth_throttle');
SELECT create_reference_table('signing_keys');
SELECT create_reference_table('tenants');
SELECT create_reference_table('token_revocations');
SELECT create_distributed_table('users', 'tenant_id');
SELECT create_distributed_table('audit_seals', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('call_scripts', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('case_counters', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('custom_fields', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('export_rules', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('persisted_queries', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('phone_numbers', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('pipelines', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('queues', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('record_history', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('roles', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('security_events', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('teams', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('accounts', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('bulk_read_usage', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('calendar_feeds', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('case_assignment_rules', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('exports', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('idempotency_keys', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('imports', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('kb_articles', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('mfa_recovery_codes', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('mfa_totp', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('oauth_clients', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('pipeline_stages', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('price_books', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('products', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('queue_members', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('role_rules', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('role_scopes', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('script_runs', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('sla_policies', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('sync_devices', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('team_members', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('user_roles', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('auth_flows', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('auth_sessions', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('authorization_codes', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('contacts', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('kb_article_versions', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('price_book_entries', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('sync_outcomes', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('cases', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('opportunities', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('refresh_tokens', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('activities', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('case_replies', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('case_status_links', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('case_surveys', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('leads', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('opportunity_stages', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('quotes', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('orders', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('quote_lines', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('reminder_dismissals', 'tenant_id', colocate_with => 'users');
SELECT create_distributed_table('order_lines', 'tenant_id', colocate_with => 'users');
COMMIT;
