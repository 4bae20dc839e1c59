"""duologue's own JSON export (``duologue export --format json``), read back.

The document is decoded with the protocol's ``ExportDocument`` type, so anything that
does not validate is a broken file. Messages keep their models, times, content and
status (a reply exported while it streamed comes back ``interrupted``); switches are
recomputed from the models, as for any import.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from duologue.protocol import methods as m

from .records import ParseReport, shown

SOURCE = "duologue"
_decoder = msgspec.json.Decoder(m.ExportDocument)


def parse(path: Path, data: bytes, report: ParseReport) -> list[m.ImportSession]:
    try:
        doc = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        report.broken(path, None, f"not a valid duologue export: {exc}")
        return []
    if doc.version != 1:
        report.broken(path, None, f"duologue export version {doc.version} is not known here (1 is)")
        return []
    s = doc.session
    messages = [m.ImportMessage(external_id=f"{SOURCE}:{s.id}:{x.id}", role=x.role, content=x.content,
                                created_at=x.created_at, model=x.model, usage=x.usage,
                                status="interrupted" if x.status == "streaming" else x.status)
                for x in doc.messages]
    if not messages:
        report.skip("duologue session without messages")
        return []
    report.sessions += 1
    report.messages += len(messages)
    metadata = {**s.metadata, "imported_from": SOURCE, "source_session": s.id, "source_file": shown(str(path))}
    return [m.ImportSession(external_id=f"{SOURCE}:{s.id}", sources=[SOURCE], title=s.title,
                            created_at=s.created_at, project_id=s.project_id, system_prompt=s.system_prompt,
                            metadata=metadata, messages=messages)]
