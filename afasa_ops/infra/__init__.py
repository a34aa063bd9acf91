"""One thin driver per external system. Every subprocess and socket call goes through here."""
