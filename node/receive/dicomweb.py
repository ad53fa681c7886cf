"""DICOMweb receiver: STOW-RS (PS3.18 10.5), ``POST /dicom-web/studies[/{study}]``.

Thin, like the C-STORE handler: each application/dicom part of the multipart/related body is
spooled to a file as it streams in (never the whole body in memory), then handed as bytes to the
same ``Ingestor`` as C-STORE (durable write, index row, routing). Ingest errors become PS3.18
failure reasons; the HTTP status says whether all (200), some (202) or none (409) were stored.

- 415: the request is not multipart/related with application/dicom parts;
- 413: the body is larger than ``dicomweb.max_body_bytes``. With a Content-Length that says so,
  nothing is read or stored. A chunked body is read until it crosses the limit: the parts
  complete by then are stored and listed in the response, the rest is refused;
- a part larger than ``dicomweb.max_instance_bytes``: failure 0xA700 for that part only;
- a part that is not application/dicom, or not readable DICOM: failure 0xC000 for that part.
Human-readable reasons go in ``Warning: 299`` headers (PS3.18 8.5.1), one per failure (at most ten).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import partial

import anyio
import pydicom
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydicom.dataset import Dataset
from starlette.requests import ClientDisconnect

from node.dicomweb.context import DICOM_JSON, DicomWebContext, add_warnings
from node.dicomweb.multipart import MultipartError, PartSpooler, SpooledPart, parse_media_type
from node.instance_index import Received
from node.receive.answers import INTERNAL_ERROR, answer_for
from storage.files import UID_RE, InvalidUID, check_uid

log = logging.getLogger(__name__)

# PS3.18 Table I.2-2 failure reasons
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110

# After the body limit is crossed, read (and drop) at most this much more so that the client,
# still sending, gets to read the 413; beyond it the connection is simply closed.
DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass
class Outcome:
    part: int
    stored: bool
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    failure_reason: int | None = None
    text: str = ""
    retry_later: bool = False  # out of disk: the same request may succeed later


def _identify(data: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    """Best-effort UIDs (SOP class, SOP instance, study, series) of a part that failed."""
    try:
        ds = pydicom.dcmread(
            io.BytesIO(data),
            stop_before_pixels=True,
            force=True,
            specific_tags=[
                "SOPClassUID",
                "SOPInstanceUID",
                "StudyInstanceUID",
                "SeriesInstanceUID",
            ],
        )
    except Exception:
        return None, None, None, None

    def uid(keyword: str) -> str | None:
        try:
            return check_uid(ds.get(keyword), keyword)
        except (InvalidUID, Exception):
            return None

    return (
        uid("SOPClassUID"),
        uid("SOPInstanceUID"),
        uid("StudyInstanceUID"),
        uid("SeriesInstanceUID"),
    )


def _safe(uid: str | None) -> str:
    return uid if uid and len(uid) <= 64 and UID_RE.match(uid) else "<unidentified>"


class StowRS:
    def __init__(self, ctx: DicomWebContext) -> None:
        self.ctx = ctx

    async def store(self, request: Request, study: str | None) -> JSONResponse:
        ctx = self.ctx
        ctx.guard.check(request, write=True)
        if study is not None:
            try:
                study = check_uid(study, "Study Instance UID")
            except InvalidUID:
                raise HTTPException(
                    400, "the Study Instance UID in the path is not a UID"
                ) from None
        media, params = parse_media_type(request.headers.get("content-type"))
        if media != "multipart/related":
            raise HTTPException(
                415,
                f'STOW-RS takes multipart/related; type="application/dicom", not {media or "none"}',
            )
        part_type = params.get("type", "application/dicom").lower()
        if part_type != "application/dicom":
            raise HTTPException(
                415,
                f"multipart/related parts of type {part_type} are not supported; "
                "send application/dicom (Part 10 files)",
            )
        boundary = params.get("boundary", "")
        limit = ctx.settings.dicomweb.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await self._drain(request, int(declared))
            return self._too_large([], limit, nothing_read=True)
        try:
            spooler = PartSpooler(boundary, ctx.store.tmp, ctx.settings.dicomweb.max_instance_bytes)
        except MultipartError as e:
            raise HTTPException(400, str(e)) from None
        outcomes: list[Outcome] = []
        peer = request.client.host if request.client else None
        total = 0
        try:
            try:
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > limit:
                        await self._drain(request, DRAIN_LIMIT)
                        return self._too_large(outcomes, limit, nothing_read=False)
                    for part in spooler.feed(chunk):
                        outcomes.append(await self._ingest(part, study, peer))
                        part.discard()
                spooler.finish()
            except MultipartError as e:
                if not any(o.stored for o in outcomes):
                    raise HTTPException(400, str(e)) from None
                # what came before the damage is stored; say so, and what went wrong after
                outcomes.append(
                    Outcome(len(outcomes) + 1, False, failure_reason=CANNOT_UNDERSTAND, text=str(e))
                )
        except ClientDisconnect:
            log.warning("STOW-RS client went away after %d part(s)", len(outcomes))
            raise
        finally:
            spooler.close()
        if not outcomes:
            raise HTTPException(400, "the multipart body holds no parts")
        return self._response(request, outcomes, study)

    async def _drain(self, request: Request, at_most: int) -> None:
        """Read and drop the rest of the body, up to ``at_most`` bytes."""
        n = 0
        try:
            async for chunk in request.stream():
                n += len(chunk)
                if n > DRAIN_LIMIT or n > at_most:
                    break
        except ClientDisconnect:
            pass

    async def _ingest(self, part: SpooledPart, study: str | None, peer: str | None) -> Outcome:
        ctx = self.ctx
        limit = ctx.settings.dicomweb.max_instance_bytes
        if part.too_large:
            return self._fail(
                Outcome(part.index, False, failure_reason=OUT_OF_RESOURCES),
                f"part {part.index} is larger than dicomweb.max_instance_bytes ({limit} bytes)",
                "too_large",
            )
        media = part.media_type or "application/dicom"
        if media != "application/dicom":
            return self._fail(
                Outcome(part.index, False, failure_reason=CANNOT_UNDERSTAND),
                f"part {part.index} is {media[:64]}, not application/dicom",
                "not_dicom",
            )
        data = part.read()
        try:
            result = await anyio.to_thread.run_sync(
                partial(
                    ctx.ingestor.ingest,
                    data,
                    Received(source="dicomweb", peer_host=peer),
                    expect_study_instance=study,
                )
            )
        except Exception as e:  # every refusal from one table; a bug must not lose other parts
            answer = answer_for(e)
            if answer is INTERNAL_ERROR:
                log.exception("STOW-RS part %d failed unexpectedly", part.index)
            return self._failed(
                part, data, answer.stow_reason, e, answer.metric, retry=answer.retryable
            )
        counter = ctx.metrics.duplicates if result.duplicate else ctx.metrics.received
        counter.labels(source="dicomweb").inc()
        ctx.metrics.received_bytes.labels(source="dicomweb").inc(len(data))
        log.info(
            "stored %s via STOW-RS from %s%s",
            result.sop_instance_uid,
            peer,
            " (duplicate, ignored)" if result.duplicate else "",
        )
        cls, _, study_uid, series_uid = _identify(data)
        return Outcome(
            part.index,
            True,
            sop_class_uid=cls,
            sop_instance_uid=result.sop_instance_uid,
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
        )

    def _failed(
        self,
        part: SpooledPart,
        data: bytes,
        code: int,
        err: Exception,
        metric: str,
        retry: bool = False,
    ) -> Outcome:
        cls, sop, study, series = _identify(data)
        outcome = Outcome(
            part.index,
            False,
            sop_class_uid=cls,
            sop_instance_uid=sop,
            study_instance_uid=study,
            series_instance_uid=series,
            failure_reason=code,
            retry_later=retry,
        )
        text = f"part {part.index}"
        if sop:
            text += f" ({sop})"
        return self._fail(outcome, f"{text}: {err}", metric)

    def _fail(self, outcome: Outcome, text: str, metric: str) -> Outcome:
        outcome.text = text
        self.ctx.metrics.rejected.labels(source="dicomweb", reason=metric).inc()
        log.warning(
            "STOW-RS refused %s with 0x%04X: %s",
            _safe(outcome.sop_instance_uid),
            outcome.failure_reason or 0,
            text,
        )
        return outcome

    # -- responses ---------------------------------------------------------------------------
    def _dataset(self, request: Request, outcomes: list[Outcome], study: str | None) -> Dataset:
        ctx = self.ctx
        ds = Dataset()
        stored = [o for o in outcomes if o.stored]
        studies = {o.study_instance_uid for o in stored if o.study_instance_uid}
        target = study or (next(iter(studies)) if len(studies) == 1 else None)
        ds.RetrieveURL = ctx.study_url(request, target) if target else None
        if any(not o.stored for o in outcomes):
            items = []
            for o in outcomes:
                if o.stored:
                    continue
                item = Dataset()
                if o.sop_class_uid:
                    item.ReferencedSOPClassUID = o.sop_class_uid
                if o.sop_instance_uid:
                    item.ReferencedSOPInstanceUID = o.sop_instance_uid
                item.FailureReason = o.failure_reason or PROCESSING_FAILURE
                items.append(item)
            ds.FailedSOPSequence = items
        if stored:
            items = []
            for o in stored:
                item = Dataset()
                if o.sop_class_uid:
                    item.ReferencedSOPClassUID = o.sop_class_uid
                item.ReferencedSOPInstanceUID = o.sop_instance_uid
                if o.study_instance_uid and o.series_instance_uid and o.sop_instance_uid:
                    item.RetrieveURL = ctx.instance_url(
                        request, o.study_instance_uid, o.series_instance_uid, o.sop_instance_uid
                    )
                items.append(item)
            ds.ReferencedSOPSequence = items
        return ds

    def _response(
        self, request: Request, outcomes: list[Outcome], study: str | None
    ) -> JSONResponse:
        stored = sum(o.stored for o in outcomes)
        failed = [o for o in outcomes if not o.stored]
        if not failed:
            status = 200
        elif stored:
            status = 202
        elif all(o.retry_later for o in failed):
            status = 503
        else:
            status = 409
        response = JSONResponse(
            self._dataset(request, outcomes, study).to_json_dict(),
            status_code=status,
            media_type=DICOM_JSON,
        )
        add_warnings(response, [o.text for o in failed])
        if status == 503:
            response.headers["Retry-After"] = "60"
        return response

    def _too_large(self, outcomes: list[Outcome], limit: int, nothing_read: bool) -> JSONResponse:
        text = f"the request body is larger than dicomweb.max_body_bytes ({limit} bytes)" + (
            "; nothing was stored" if nothing_read else "; parts after the limit were not read"
        )
        self.ctx.metrics.rejected.labels(source="dicomweb", reason="body_too_large").inc()
        log.warning("STOW-RS refused: %s", text)
        ds = Dataset()
        stored = [o for o in outcomes if o.stored]
        if stored:
            items = []
            for o in stored:
                item = Dataset()
                if o.sop_class_uid:
                    item.ReferencedSOPClassUID = o.sop_class_uid
                item.ReferencedSOPInstanceUID = o.sop_instance_uid
                items.append(item)
            ds.ReferencedSOPSequence = items
        body = ds.to_json_dict()
        response = JSONResponse(body, status_code=413, media_type=DICOM_JSON)
        add_warnings(response, [text])
        response.headers["Connection"] = "close"
        return response


def stow_router(ctx: DicomWebContext) -> APIRouter:
    stow = StowRS(ctx)
    router = APIRouter(tags=["STOW-RS"])
    body_doc = {
        "requestBody": {
            "required": True,
            "description": 'multipart/related; type="application/dicom"; boundary=...: '
            "one DICOM Part 10 file per part",
            "content": {
                'multipart/related; type="application/dicom"': {
                    "schema": {"type": "string", "format": "binary"}
                }
            },
        }
    }
    responses: dict[int | str, dict[str, object]] = {
        200: {"description": "All instances stored", "content": {DICOM_JSON: {}}},
        202: {"description": "Some stored; failures listed", "content": {DICOM_JSON: {}}},
        400: {"description": "Malformed multipart body or Study Instance UID"},
        401: {"description": "Credentials required"},
        409: {"description": "None stored; failures listed", "content": {DICOM_JSON: {}}},
        413: {"description": "Body over dicomweb.max_body_bytes", "content": {DICOM_JSON: {}}},
        415: {"description": "Not multipart/related with application/dicom parts"},
        503: {"description": "Out of disk space; retry later", "content": {DICOM_JSON: {}}},
    }

    @router.post(
        "/studies",
        summary="Store instances (STOW-RS)",
        openapi_extra=body_doc,
        responses=responses,
        response_class=JSONResponse,
    )
    async def store_instances(request: Request) -> JSONResponse:
        return await stow.store(request, None)

    @router.post(
        "/studies/{study}",
        summary="Store instances of one study (STOW-RS)",
        openapi_extra=body_doc,
        responses=responses,
        response_class=JSONResponse,
    )
    async def store_study_instances(study: str, request: Request) -> JSONResponse:
        return await stow.store(request, study)

    return router
