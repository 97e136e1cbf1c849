"""The agency profile: who we are, where our data lives, and which partners we exchange with."""
