SELECT json_build_object(
  'revision', (SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version),
  'notes', (SELECT coalesce(json_agg(json_build_object('id', n.id, 'title', n.title, 'body', to_jsonb(n) ->> 'body')
                                     ORDER BY n.id), '[]'::json) FROM notes n),
  'note_columns', (SELECT json_agg(column_name::text ORDER BY column_name) FROM information_schema.columns
                   WHERE table_schema = 'public' AND table_name = 'notes'),
  'tables', (SELECT json_agg(table_name::text ORDER BY table_name) FROM information_schema.tables
             WHERE table_schema = 'public'),
  'databases', (SELECT json_agg(datname::text ORDER BY datname) FROM pg_database WHERE NOT datistemplate))
