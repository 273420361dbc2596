"""Read back what W&B wrote offline: the run-*.wandb transaction log.

The file is a 7-byte header (":W&B", magic, version) followed by 32 KiB blocks of
LevelDB-style records (crc32, length, type) carrying protobuf `Record`s.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes):
    pos, pending = HEADER, b""
    while pos + 7 <= len(data):
        left_in_block = BLOCK - (pos % BLOCK)
        if left_in_block < 7:
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            pos += BLOCK - (pos % BLOCK) if pos % BLOCK else 0
            continue
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


def read_offline_run(run_dir: Path) -> dict:
    """{'run': {...}, 'config': {...}, 'history': [{...}], 'summary': {...}, 'artifacts': [...]} of one
    offline run; each artifact as {'name', 'type', 'files'}."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = next(Path(run_dir).glob("run-*.wandb"))
    data = path.read_bytes()
    # wandb-core may still be writing the log's last block just after finish() returns on a
    # loaded machine: wait (briefly) until the file stops growing.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if (again := path.read_bytes()) == data:
            break
        data = again
    out: dict = {"run": {}, "config": {}, "history": [], "summary": {}, "artifacts": []}
    for payload in _payloads(data):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = {
                "id": record.run.run_id,
                "group": record.run.run_group,
                "name": record.run.display_name,
                "tags": list(record.run.tags),
            }
        elif kind == "config":
            for item in record.config.update:
                out["config"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "history":
            out["history"].append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
        elif kind == "artifact":
            files = [entry.path for entry in record.artifact.manifest.contents]
            out["artifacts"].append({"name": record.artifact.name, "type": record.artifact.type, "files": files})
        elif kind == "summary":
            for item in record.summary.update:
                out["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out
