"""reasoning-service: plans work from perceptions and memories."""
