"""Names the runbook uses: `python -c "from app.database import engine; print('DB OK')"`."""
