"""index the header attributes QIDO-RS matches on and returns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00

Rows that exist before this migration keep index_version 0; the node re-reads their headers at
start (node.dicomweb.index.backfill) since the migration cannot reach the file store.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STRINGS = [
    ("specific_character_set", 64),
    ("patient_name", 324),
    ("patient_id", 64),
    ("patient_birth_date", 16),
    ("patient_sex", 16),
    ("study_date", 16),
    ("study_time", 32),
    ("accession_number", 64),
    ("study_id", 64),
    ("study_description", 128),
    ("referring_physician_name", 324),
    ("modality", 16),
    ("series_description", 128),
    ("performed_procedure_step_start_date", 16),
    ("performed_procedure_step_start_time", 32),
]
INTEGERS = [
    "series_number",
    "instance_number",
    "rows",
    "columns",
    "bits_allocated",
    "number_of_frames",
]
INDEXED = ["patient_id", "study_date", "accession_number", "modality"]


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table much; Alembic copies it where it must
    with op.batch_alter_table("instances") as batch:
        batch.add_column(
            sa.Column("index_version", sa.Integer(), nullable=False, server_default="0")
        )
        for name, length in STRINGS:
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))
        for name in INTEGERS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
    for name in INDEXED:
        op.create_index(op.f(f"ix_instances_{name}"), "instances", [name], unique=False)


def downgrade() -> None:
    for name in INDEXED:
        op.drop_index(op.f(f"ix_instances_{name}"), table_name="instances")
    with op.batch_alter_table("instances") as batch:
        for name in reversed(INTEGERS):
            batch.drop_column(name)
        for name, _ in reversed(STRINGS):
            batch.drop_column(name)
        batch.drop_column("index_version")
