"""The tables of this release (migration 3f6c1a9e2b70: notes(id, title))."""

from notes import db

FEATURES = []


class Note(db.Model):
    __tablename__ = "notes"

    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)

    @classmethod
    def from_json(cls, data):
        return cls(title=data["title"])

    def as_dict(self):
        return {"id": self.id, "title": self.title}
