"""Tresen's entry point: `app` for gunicorn and flask; `python app.py` runs the embedded default."""

from bot import create_app

app = create_app()

if __name__ == "__main__":
    from bot.embedded import run

    run(app)
