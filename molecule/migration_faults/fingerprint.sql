SELECT json_build_object(
  'revision', (SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version),
  'jobs', (SELECT count(*) FROM jobs),
  'documents', (SELECT count(*) FROM documents),
  'documents_md5', (SELECT md5(coalesce(string_agg(d.id || ':' || coalesce(to_jsonb(d) ->> 'body', to_jsonb(d) ->> 'content', '<none>'),
                                                   ',' ORDER BY d.id), '')) FROM documents d),
  'document_columns', (SELECT json_agg(column_name::text ORDER BY column_name) FROM information_schema.columns
                       WHERE table_schema = 'public' AND table_name = 'documents'),
  'databases', (SELECT json_agg(datname::text ORDER BY datname) FROM pg_database WHERE NOT datistemplate))
