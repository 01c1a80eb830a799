"""Media: customers' photos, voice notes and documents, and the files the shop sends.

Files are kept on our own server (`store`: a folder, or an S3-compatible object store), keyed
by their SHA-256, so a picture sent twice is kept once; `kinds` holds WhatsApp's media kinds
and Meta's limits, pure.
"""
