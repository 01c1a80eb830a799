"""stored broadcast jobs name their function where it now lives, bot.broadcasts.scheduler

Revision ID: 0010_broadcast_jobs
Revises: 0009_inbound_journal
Create Date: 2026-11-29
"""

import pickle

import sqlalchemy as sa
from alembic import op


revision = "0010_broadcast_jobs"
down_revision = "0009_inbound_journal"
branch_labels = None
depends_on = None

jobs = sa.table("apscheduler_jobs", sa.column("id"), sa.column("job_state", sa.LargeBinary))

OLD = "bot.scheduler:fire"
NEW = "bot.broadcasts.scheduler:fire"


def _rename(old: str, new: str) -> None:
    # APScheduler finds a job's function by the name stored with it, and drops a job whose
    # function it cannot find: a recurring broadcast would then lose the time it missed
    # while no worker ran. The state is APScheduler's own pickle of the job, written by this
    # application into its own table.
    conn = op.get_bind()
    for job_id, blob in conn.execute(sa.select(jobs.c.id, jobs.c.job_state)):
        state = pickle.loads(blob)  # noqa: S301
        if state.get("func") != old:
            continue
        state["func"] = new
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(job_state=pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
        )


def upgrade() -> None:
    _rename(OLD, NEW)


def downgrade() -> None:
    _rename(NEW, OLD)
