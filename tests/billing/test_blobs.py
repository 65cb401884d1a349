"""The real azure-storage-blob client against Azurite: an export uploaded to a container reads as from a folder."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from collector.azure_clients import Connection
from collector.billing.blobs import BlobContainerSource, parse_container_url
from collector.billing.exports import discover, read_lines
from collector.billing.folders import FolderSource
from collector.errors import InputError, TerminalError, TransientError
from tests.billing.azurite import container_url as _url
from tests.billing.azurite import upload_folder as _upload
from tests.billing.export_files import account_ids, focus_rows, legacy_rows, usages, write_run

DAYS = [date(2025, 3, 1) + timedelta(days=i) for i in range(4)]
T0 = datetime(2025, 3, 5, 6, 0, tzinfo=UTC)


def test_a_container_reads_the_same_lines_as_the_folder_it_was_copied_from(azurite: str, tmp_path: Path) -> None:
    accounts = account_ids(3)
    write_run(tmp_path, list(focus_rows(usages(accounts, DAYS[:2], seed=1))), start=DAYS[0], end=DAYS[1],
              run_id="older", submitted=T0, fmt="csv.gz")
    write_run(tmp_path, list(focus_rows(usages(accounts, DAYS, seed=2))), start=DAYS[0], end=DAYS[3],
              run_id="newer", submitted=T0 + timedelta(days=1), fmt="parquet")
    write_run(tmp_path, list(legacy_rows(usages(accounts, DAYS, seed=3), "mca", True, "tokens")), export="amortized",
              dataset="AmortizedCost", version="2023-12-01-preview", start=DAYS[0], end=DAYS[3], run_id="a1",
              submitted=T0, fmt="csv.gz", flavor="mca")
    _upload(azurite, "msexports", tmp_path)
    source = BlobContainerSource(_url(azurite, "msexports"), connection_string=azurite)
    from_blobs = list(read_lines(discover(source.files()).runs))
    from_folder = list(read_lines(discover(FolderSource(tmp_path).files()).runs))
    assert len(from_blobs) == len(from_folder) > 0
    assert [(b.day, b.resource_id, b.meter_id, b.quantity, b.billed_cost, b.file, b.line) for b in from_blobs] == \
        [(f.day, f.resource_id, f.meter_id, f.quantity, f.billed_cost, f.file, f.line) for f in from_folder]
    assert {b.run_id for b in from_blobs} == {"newer", "a1"}


def test_a_prefix_limits_the_listing_and_blob_names_still_match_the_manifest(azurite: str, tmp_path: Path) -> None:
    write_run(tmp_path, list(focus_rows(usages(account_ids(2), DAYS[:1]))), start=DAYS[0], end=DAYS[0], run_id="r1",
              submitted=T0, directory="finops/focus")
    _upload(azurite, "prefixed", tmp_path, under="")
    source = BlobContainerSource(_url(azurite, "prefixed", "finops/focus"), connection_string=azurite)
    assert all(f.name.startswith("finops/focus/") for f in source.files())
    assert len(list(read_lines(discover(source.files()).runs))) == len(usages(account_ids(2), DAYS[:1]))
    empty = BlobContainerSource(_url(azurite, "prefixed", "elsewhere"), connection_string=azurite)
    with pytest.raises(InputError, match="no manifest"):
        discover(empty.files())


def test_a_missing_container_and_a_wrong_key_say_what_to_do(azurite: str) -> None:
    with pytest.raises(TerminalError, match="no container nothing-here"):
        list(BlobContainerSource(_url(azurite, "nothing-here"), connection_string=azurite).files())
    wrong = azurite.replace("AccountKey=Eby8", "AccountKey=AAAA")
    with pytest.raises(TerminalError, match="Storage Blob Data Reader"):
        list(BlobContainerSource(_url(azurite, "msexports"), connection_string=wrong).files())


def test_an_unreachable_account_is_transient() -> None:
    source = BlobContainerSource("http://127.0.0.1:9/devstoreaccount1/c", Connection("http://127.0.0.1:9", retries=0),
                                 connection_string="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                                 "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    with pytest.raises(TransientError, match="cannot reach"):
        list(source.files())


@pytest.mark.parametrize(("url", "account_url", "container", "prefix"), [
    ("https://acct.blob.core.windows.net/msexports", "https://acct.blob.core.windows.net", "msexports", ""),
    ("https://acct.blob.core.windows.net/msexports/a/b/", "https://acct.blob.core.windows.net", "msexports", "a/b"),
    ("http://127.0.0.1:10000/devstoreaccount1/c/x", "http://127.0.0.1:10000/devstoreaccount1", "c", "x"),
])
def test_container_urls(url: str, account_url: str, container: str, prefix: str) -> None:
    address = parse_container_url(url)
    assert (address.account_url, address.container, address.prefix) == (account_url, container, prefix)


@pytest.mark.parametrize("url", ["acct/msexports", "https://acct.blob.core.windows.net/", "http://127.0.0.1:1/acct"])
def test_urls_that_name_no_container_are_refused(url: str) -> None:
    with pytest.raises(InputError, match="does not name a blob container"):
        parse_container_url(url)
