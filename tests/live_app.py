"""The app as gunicorn serves it, with event streams of a few seconds (tests/test_live.py)."""

from bot import create_app
from bot.admin.live import Timing

app = create_app()
app.config["TRESEN_LIVE_TIMING"] = Timing(lifetime=8.0, check=0.2, heartbeat=1.0)
