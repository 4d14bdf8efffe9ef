"""Code shared by every service of the AI Workflow Engine reference stack."""
