-- What the scenario compares before and after a restore, as one JSON object: per table of schema public its row
-- count and an md5 of all its rows (as text, sorted); the columns (name, type, nullable, default), constraints and
-- indexes of the schema; the Alembic revision.
SELECT json_build_object(
  'tables', (SELECT coalesce(json_object_agg(c.relname, (xpath('/row/f/text()', query_to_xml(format(
               'SELECT count(*) || '' '' || coalesce(md5(string_agg(t::text, ''|'' ORDER BY t::text)), ''-'') AS f FROM public.%I AS t',
               c.relname), false, true, '')))[1]::text ORDER BY c.relname), '{}')
             FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')),
  'columns', (SELECT string_agg(format('%s.%s %s %s %s', table_name, column_name, data_type, is_nullable,
                                       coalesce(column_default, '')), ', ' ORDER BY table_name, ordinal_position)
              FROM information_schema.columns WHERE table_schema = 'public'),
  'constraints', (SELECT string_agg(format('%s: %s', c.conname, pg_get_constraintdef(c.oid)), ', ' ORDER BY c.conname)
                  FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace WHERE n.nspname = 'public'),
  'indexes', (SELECT string_agg(indexdef, ', ' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'),
  'alembic_revision', (SELECT string_agg(version_num, ',') FROM public.alembic_version)
);
