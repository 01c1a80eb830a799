"""The inbound pipeline: webhook → journal → processor → one handler per event kind."""
