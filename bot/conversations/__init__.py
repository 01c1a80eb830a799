"""How the team handles conversations: state, assignment, who has read what, notes."""
