"""``/metrics`` of ``collect --processes N``: any process answers for all of them.

Prometheus scrapes one address, and the kernel hands the connection to any
one of the processes sharing the port; a page of that process alone would
jump between processes from scrape to scrape. So each process also serves
its own page on a Unix socket in the group's directory, and the process
that takes a scrape gathers its siblings' pages and answers with every
sample labelled ``process="<index>"`` (sum by the other labels for the
collector's totals). A sibling that does not answer in time (it is being
restarted) shows as ``outagewatch_collector_process_up{process=...} 0``
and its samples are missing from that scrape: counters restart with a new
process, which ``rate()`` reads as the reset it is.

>>> page = '# HELP x_total n\\n# TYPE x_total counter\\nx_total{kind="a"} 2.0\\n'
>>> print(merge({"0": page, "1": page.replace("2.0", "3.0")}, missing=["2"]).decode().strip())
# HELP x_total n
# TYPE x_total counter
x_total{kind="a",process="0"} 2.0
x_total{kind="a",process="1"} 3.0
# HELP outagewatch_collector_process_up 1 while the collector process answered this scrape
# TYPE outagewatch_collector_process_up gauge
outagewatch_collector_process_up{process="0"} 1.0
outagewatch_collector_process_up{process="1"} 1.0
outagewatch_collector_process_up{process="2"} 0.0
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

UP = "outagewatch_collector_process_up"
GATHER_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among ``size`` collectors sharing a port; pages are served in ``directory``."""

    index: int
    size: int
    directory: str

    def socket_of(self, index: int) -> str:
        return str(Path(self.directory) / f"collector-{index}.sock")

    @property
    def siblings(self) -> list[int]:
        return [index for index in range(self.size) if index != self.index]


class _Merged:
    """A registry collector yielding already-merged families (``generate_latest`` renders it)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def merge(pages: Mapping[str, str], missing: Sequence[str] = ()) -> bytes:
    """One exposition from each process's page (process name -> text), every sample labelled by its process."""
    families: dict[str, Metric] = {}
    for process, text in pages.items():
        for family in text_string_to_metric_families(text):
            merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type,
                                                             family.unit))
            merged.samples += [Sample(s.name, {**s.labels, "process": process}, s.value, s.timestamp, s.exemplar)
                               for s in family.samples]
    up = Metric(UP, "1 while the collector process answered this scrape", "gauge")
    up.samples = [Sample(UP, {"process": process}, 1.0 if process in pages else 0.0, None, None)
                  for process in sorted([*pages, *missing], key=lambda name: (len(name), name))]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged([*families.values(), up]))
    return generate_latest(registry)


async def _page_of(path: str) -> str | None:
    """A sibling's own page over its Unix socket; None when it does not answer in time."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), GATHER_TIMEOUT_S)
    except (TimeoutError, OSError):
        return None
    try:
        writer.write(b"GET /metrics HTTP/1.0\r\nHost: collector\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), GATHER_TIMEOUT_S)
    except (TimeoutError, OSError):
        return None
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return body.decode() if head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n", 1)[0] else None


async def gather(group: ProcessGroup, own: str) -> bytes:
    """This process's page merged with its siblings' (fetched at once, each within ``GATHER_TIMEOUT_S``)."""
    answers = await asyncio.gather(*(_page_of(group.socket_of(index)) for index in group.siblings))
    pages = {str(group.index): own}
    missing = []
    for index, page in zip(group.siblings, answers, strict=True):
        if page is None:
            missing.append(str(index))
        else:
            pages[str(index)] = page
    return merge(pages, missing)
