"""What the migrations know of the rollups, frozen: a migration never imports application code, whose rollups may
have changed since it was written. Never edit a snapshot; when the rollups change, add a new one for the
migrations written after.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

#: The rollups from revision 0001 on (unchanged through 0007): table -> (string keys, integer keys, integer
#: measures, real measures).
ROLLUPS_0001: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "requests": (
        ("account", "deployment"),
        (),
        ("requests", "requests_2xx", "requests_4xx", "requests_400", "requests_429", "requests_5xx",
         "duration_ms_sum"),
        (),
    ),
    "latency": (("account", "deployment"), ("le_bucket",), ("requests", "duration_ms_sum"), ()),
    "caller_requests": (
        ("account", "deployment", "caller_object_id"),
        (),
        ("requests", "requests_ok", "request_bytes", "response_bytes"),
        (),
    ),
    "apim_tokens": (
        ("apim_subscription_id", "deployment", "model"),
        (),
        ("requests", "prompt_tokens", "completion_tokens", "total_tokens"),
        (),
    ),
    "usage_tokens": (
        ("account", "deployment", "model", "caller_object_id"),
        (),
        ("requests", "prompt_tokens", "cached_tokens", "completion_tokens"),
        (),
    ),
    "platform_metrics": (
        ("account", "deployment", "metric", "status_code"),
        (),
        (),
        ("total", "count", "minimum", "maximum"),
    ),
}


def derive_sql(table: str, finer: str, coarser: str, bucket: str) -> str:
    """INSERT ... SELECT that fills `<table>_<coarser>` from `<table>_<finer>`, `bucket` being the SQL of the coarser
    bucket of `bucket_start` (sums; min of minimum, max of maximum)."""
    string_keys, int_keys, int_measures, real_measures = ROLLUPS_0001[table]
    keys = ", ".join((*string_keys, *int_keys))
    sums = ", ".join([*(f"sum({m})" for m in int_measures),
                      *(f"{'min' if m == 'minimum' else 'max' if m == 'maximum' else 'sum'}({m})"
                        for m in real_measures)])
    return (f"INSERT INTO {table}_{coarser} SELECT source, {bucket}, {keys}, {sums} FROM {table}_{finer} "
            f"GROUP BY source, {bucket}, {keys}")


def columns(table: str, *, keyed: bool = True) -> list[sa.Column[Any]]:
    """The columns of a `<table>_<tier>` rollup table; the key columns make its primary key unless `keyed` is
    False (a table given a primary key of another order)."""
    string_keys, int_keys, int_measures, real_measures = ROLLUPS_0001[table]
    return [
        sa.Column("source", sa.String(64), primary_key=keyed, nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=keyed, nullable=False),
        *(sa.Column(k, sa.String(256), primary_key=keyed, nullable=False) for k in string_keys),
        *(sa.Column(k, sa.Integer(), primary_key=keyed, nullable=False) for k in int_keys),
        *(sa.Column(m, sa.BigInteger(), nullable=False) for m in int_measures),
        *(sa.Column(m, sa.Float(precision=53), nullable=False) for m in real_measures),
    ]


def cost_daily_columns_0003() -> list[sa.Column[Any]]:
    """The columns of `cost_daily` as revision 0003 made them (and 0009 copied for `cost_estimate_daily`)."""
    return [
        sa.Column("day", sa.DateTime(timezone=True), primary_key=True),
        *(sa.Column(name, sa.String(size), primary_key=True) for name, size in (
            ("account", 256), ("deployment", 256), ("team", 256), ("method", 16), ("price_id", 512))),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in (
            "requests", "prompt_tokens", "cached_tokens", "completion_tokens", "cost_micro_usd")),
        sa.Column("unpriced", sa.Integer(), nullable=False),
    ]
