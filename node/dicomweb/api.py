"""The /dicom-web routes: STOW-RS (node.receive.dicomweb), QIDO-RS and WADO-RS (here).

QIDO-RS answers application/dicom+json from the index (node.dicomweb.query). WADO-RS serves the
stored files as they were received (multipart/related; type="application/dicom", in their own
transfer syntax unless the Accept header asks for Explicit/Implicit VR Little Endian), metadata
(DICOM JSON, Pixel Data left out), uncompressed frames, and rendered PNG/JPEG.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pydicom
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydicom.dataset import Dataset
from pydicom.uid import UID
from sqlalchemy import select

from node.dicomweb import query as qido
from node.dicomweb.context import DICOM_JSON, PREFIX, DicomWebContext, add_warnings
from node.dicomweb.multipart import (
    MediaRange,
    file_chunks,
    new_boundary,
    parse_accept,
    write_multipart,
)
from node.dicomweb.render import (
    UNCOMPRESSED,
    RenderError,
    frame_bytes,
    frame_count,
    parse_frame_list,
    parse_viewport,
    parse_window,
    read,
    render,
    stored_frame,
    to_uncompressed,
)
from node.receive.dicomweb import stow_router
from node.sop import ACCEPTED_TRANSFER_SYNTAXES
from storage.files import InvalidUID, check_uid
from storage.tables import Instance

log = logging.getLogger(__name__)

UID_PATTERN = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$"
AS_STORED = "*"
MORE_RESULTS = "there are additional results that can be requested (use offset)"


def _uid_param(name: str) -> Any:
    return PathParam(..., description=f"{name} Instance UID", max_length=64, pattern=UID_PATTERN)


def _uid(value: str, what: str) -> str:
    try:
        return check_uid(value, what)
    except InvalidUID:
        raise HTTPException(400, f"the {what} in the path is not a UID") from None


def _accepts(accept: str | None, *media_types: str) -> bool:
    return any(r.matches(m) for r in parse_accept(accept) for m in media_types)


def _qido_params(level: qido.Level) -> list[dict[str, Any]]:
    keys = {
        "study": [
            "StudyInstanceUID",
            "PatientName",
            "PatientID",
            "StudyDate",
            "StudyTime",
            "AccessionNumber",
            "ModalitiesInStudy",
            "ReferringPhysicianName",
            "StudyID",
        ],
        "series": ["SeriesInstanceUID", "Modality", "SeriesNumber"],
        "instance": ["SOPInstanceUID", "SOPClassUID", "InstanceNumber"],
    }
    params: list[dict[str, Any]] = [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": qido.MAX_INT},
        },
        {
            "name": "offset",
            "in": "query",
            "schema": {"type": "integer", "minimum": 0, "maximum": qido.MAX_INT},
        },
        {
            "name": "fuzzymatching",
            "in": "query",
            "schema": {"type": "string", "enum": ["true", "false"]},
        },
        {
            "name": "includefield",
            "in": "query",
            "description": "keywords or tags (comma-separated, repeatable), or 'all'",
            "schema": {
                "type": "array",
                "items": {"type": "string", "pattern": r"^[A-Za-z0-9]+(,[A-Za-z0-9]+)*$"},
            },
            "style": "form",
            "explode": True,
        },
    ]
    for lvl in qido.LEVELS[: qido.level_rank(level) + 1]:
        for kw in keys[lvl]:
            vr = qido.ATTRIBUTES[kw].vr
            schema: dict[str, Any] = {"type": "string"}
            if vr in VALUE_PATTERNS:
                schema["pattern"] = VALUE_PATTERNS[vr]
            params.append(
                {
                    "name": kw,
                    "in": "query",
                    "description": f"matching key ({vr}): {MATCHING[vr]}",
                    "schema": schema,
                }
            )
    return params


_UID = r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*"
_DA = r"[0-9]{8}"
_TM = r"[0-9]{2}([0-9]{2}([0-9]{2}(\.[0-9]{1,6})?)?)?"
VALUE_PATTERNS = {
    "UI": rf"^\s*(\*|{_UID}([,\\]{_UID})*)?\s*$",
    "DA": rf"^\s*(\*|{_DA}|{_DA}-|-{_DA}|{_DA}-{_DA})?\s*$",
    "TM": rf"^\s*(\*|{_TM}|{_TM}-|-{_TM}|{_TM}-{_TM})?\s*$",
    "IS": r"^\s*(\*|[+-]?[0-9]{1,9}(\\[+-]?[0-9]{1,9})*)?\s*$",
}
MATCHING = {
    "UI": "a UID or a list separated by , or \\",
    "DA": "YYYYMMDD, or a range a-b, -b, a-",
    "TM": "HHMMSS, or a range a-b, -b, a-",
    "IS": "an integer",
    "PN": "exact (case-insensitive) or with * and ? wildcards",
    "CS": "exact, with * and ? wildcards, alternatives separated by \\",
    "SH": "exact, with * and ? wildcards, alternatives separated by \\",
    "LO": "exact, with * and ? wildcards, alternatives separated by \\",
}


QIDO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Matches (an empty array when none)",
        "content": {DICOM_JSON: {"schema": {"type": "array", "items": {"type": "object"}}}},
    },
    400: {"description": "A query parameter cannot be used"},
    401: {"description": "Credentials required"},
    406: {"description": "Only application/dicom+json is offered"},
}
RETRIEVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The instances as stored",
        "content": {
            'multipart/related; type="application/dicom"': {
                "schema": {"type": "string", "format": "binary"}
            }
        },
    },
    400: {"description": "Not a UID"},
    401: {"description": "Credentials required"},
    404: {"description": "No such study, series or instance"},
    406: {"description": "No acceptable media type or transfer syntax"},
}
METADATA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "DICOM JSON of each instance (Pixel Data left out)",
        "content": {DICOM_JSON: {"schema": {"type": "array", "items": {"type": "object"}}}},
    },
    400: {"description": "Not a UID"},
    401: {"description": "Credentials required"},
    404: {"description": "No such study, series or instance"},
    406: {"description": "Only application/dicom+json is offered"},
}
FRAMES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Uncompressed frames, one part each",
        "content": {
            'multipart/related; type="application/octet-stream"': {
                "schema": {"type": "string", "format": "binary"}
            }
        },
    },
    400: {"description": "Not a UID or a frame list"},
    401: {"description": "Credentials required"},
    404: {"description": "No such instance or frame, or no pixel data"},
    406: {"description": "Only uncompressed application/octet-stream is offered"},
    422: {"description": "The pixel data cannot be decoded"},
}
RENDERED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The frame as an 8-bit image",
        "content": {
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    400: {"description": "Not a UID, or a bad window/viewport/quality"},
    401: {"description": "Credentials required"},
    404: {"description": "No such instance or frame, or no pixel data"},
    406: {"description": "Only image/jpeg and image/png are offered"},
    422: {"description": "The pixel data cannot be decoded or shown"},
}


class DicomWebRoutes:
    def __init__(self, ctx: DicomWebContext) -> None:
        self.ctx = ctx

    # -- QIDO-RS -----------------------------------------------------------------------------
    def search(
        self,
        request: Request,
        level: qido.Level,
        include_levels: tuple[qido.Level, ...],
        study: str | None = None,
        series: str | None = None,
    ) -> JSONResponse:
        ctx = self.ctx
        ctx.guard.check(request, write=False)
        if not _accepts(request.headers.get("accept"), DICOM_JSON, "application/json"):
            raise HTTPException(406, "QIDO-RS answers application/dicom+json only")
        scope: dict[str, str] = {}
        if study is not None:
            scope["study_instance_uid"] = _uid(study, "Study Instance UID")
        if series is not None:
            scope["series_instance_uid"] = _uid(series, "Series Instance UID")
        try:
            q = qido.parse_query(
                request.query_params.multi_items(),
                level=level,
                scope=level,
                include_levels=include_levels,
                max_results=ctx.settings.dicomweb.max_results,
            )
        except qido.QueryError as e:
            raise HTTPException(400, str(e)) from None
        with ctx.sessions() as s:
            matches, more = qido.run(s, q, ctx.dialect, scope)
        keywords = qido.returned_keywords(q)
        body = []
        for m in matches:
            r = m.rep
            if level == "study":
                url = ctx.study_url(request, r.study_instance_uid)
            elif level == "series":
                url = ctx.series_url(request, r.study_instance_uid, r.series_instance_uid)
            else:
                url = ctx.instance_url(
                    request, r.study_instance_uid, r.series_instance_uid, r.sop_instance_uid
                )
            ds = qido.to_dataset(m, keywords, url)
            if q.extra_tags:
                self._add_from_file(ds, r, q.extra_tags)
            body.append(ds.to_json_dict(suppress_invalid_tags=True))
        response = JSONResponse(body, media_type=DICOM_JSON)
        add_warnings(response, q.warnings + ([MORE_RESULTS] if more else []))
        return response

    def _add_from_file(self, ds: Dataset, inst: Instance, tags: list[int]) -> None:
        try:
            header = pydicom.dcmread(
                self.ctx.store.abspath(inst.path), stop_before_pixels=True, specific_tags=tags
            )
        except Exception as e:
            log.warning("cannot read the header of %s (%s)", inst.sop_instance_uid, e)
            return
        for tag in tags:
            if tag in header:
                ds[tag] = header[tag]

    # -- WADO-RS -----------------------------------------------------------------------------
    def _find(
        self, request: Request, study: str, series: str | None = None, sop: str | None = None
    ) -> list[Instance]:
        self.ctx.guard.check(request, write=False)
        conds = [Instance.study_instance_uid == _uid(study, "Study Instance UID")]
        if series is not None:
            conds.append(Instance.series_instance_uid == _uid(series, "Series Instance UID"))
        if sop is not None:
            conds.append(Instance.sop_instance_uid == _uid(sop, "SOP Instance UID"))
        with self.ctx.sessions() as s:
            rows = list(s.scalars(select(Instance).where(*conds).order_by(Instance.id)))
        if not rows:
            what = "instance" if sop else "series" if series else "study"
            raise HTTPException(404, f"no such {what}")
        for r in rows:
            if not self.ctx.store.abspath(r.path).is_file():
                log.error("the stored file of %s is missing", r.sop_instance_uid)
                raise HTTPException(404, f"the stored file of {r.sop_instance_uid} is missing")
        return rows

    def retrieve(
        self,
        request: Request,
        study: str,
        series: str | None = None,
        sop: str | None = None,
    ) -> Response:
        rows = self._find(request, study, series, sop)
        accept = request.headers.get("accept")
        plan = _plan_dicom(parse_accept(accept), rows)
        if plan is None:
            raise HTTPException(
                406,
                'no acceptable representation: multipart/related; type="application/dicom" '
                "as stored (transfer-syntax=*) or in " + " / ".join(str(u) for u in UNCOMPRESSED),
            )
        store = self.ctx.store

        def parts() -> Iterator[tuple[str, Iterator[bytes]]]:
            for r, ts in zip(rows, plan, strict=True):
                path = store.abspath(r.path)
                if ts == AS_STORED or ts == r.transfer_syntax_uid:
                    chunks: Iterator[bytes] = file_chunks(path)
                    out_ts = r.transfer_syntax_uid
                else:
                    chunks = _lazy_transcode(path, ts)
                    out_ts = ts
                yield f"application/dicom; transfer-syntax={out_ts}", chunks

        boundary = new_boundary()
        return StreamingResponse(
            write_multipart(parts(), boundary),
            media_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        )

    def metadata(
        self, request: Request, study: str, series: str | None = None, sop: str | None = None
    ) -> JSONResponse:
        rows = self._find(request, study, series, sop)
        if not _accepts(request.headers.get("accept"), DICOM_JSON, "application/json"):
            raise HTTPException(406, "metadata is offered as application/dicom+json only")
        body = []
        for r in rows:
            try:
                ds = pydicom.dcmread(self.ctx.store.abspath(r.path), stop_before_pixels=True)
            except Exception as e:
                log.error("cannot read the stored file of %s (%s)", r.sop_instance_uid, e)
                raise HTTPException(500, "a stored file cannot be read") from None
            item = ds.to_json_dict(suppress_invalid_tags=True)
            if "Rows" in ds and "BitsAllocated" in ds:
                # Pixel Data by reference (PS3.18 F.2.6): its frames, as the frames resource
                # serves them (stored syntax or uncompressed, as the client asks)
                url = self.ctx.instance_url(
                    request, r.study_instance_uid, r.series_instance_uid, r.sop_instance_uid
                )
                n = frame_count(ds)
                encapsulated = UID(r.transfer_syntax_uid).is_compressed
                vr = "OB" if encapsulated or int(ds.BitsAllocated) <= 8 else "OW"
                frames = ",".join(str(i) for i in range(1, n + 1))
                item["7FE00010"] = {"vr": vr, "BulkDataURI": f"{url}/frames/{frames}"}
            body.append(item)
        return JSONResponse(body, media_type=DICOM_JSON)

    def frames(self, request: Request, study: str, series: str, sop: str, frames: str) -> Response:
        row = self._find(request, study, series, sop)[0]
        stored_ok = uncompressed_ok = False
        for r in parse_accept(request.headers.get("accept")):
            media = r.media_type
            if media == "multipart/related":
                media = r.params.get("type", "application/octet-stream").lower()
            if media not in ("*/*", "multipart/*", "application/octet-stream"):
                continue
            # PS3.18 8.7.3.5: without a transfer-syntax parameter, octet-stream means Explicit
            # VR Little Endian; "*" or the stored syntax lets the server send the frame as stored
            ts = r.params.get("transfer-syntax", UNCOMPRESSED[0] if media != "*/*" else AS_STORED)
            stored_ok = stored_ok or ts in (AS_STORED, row.transfer_syntax_uid)
            uncompressed_ok = uncompressed_ok or ts in (AS_STORED, *UNCOMPRESSED)
        if not (stored_ok or uncompressed_ok):
            raise HTTPException(
                406, 'frames are offered as multipart/related; type="application/octet-stream"'
            )
        try:
            numbers = parse_frame_list(frames)
            ds = read(self.ctx.store.abspath(row.path))
            stored = [stored_frame(ds, n) for n in numbers] if stored_ok else []
            if stored and all(b is not None for b in stored):
                data = [b for b in stored if b is not None]
                ts_out = row.transfer_syntax_uid
            elif uncompressed_ok:
                data = [frame_bytes(ds, n) for n in numbers]
                ts_out = UNCOMPRESSED[0]
            else:  # only a stored syntax this server cannot give frame by frame was asked for
                raise HTTPException(406, f"frames are offered as stored or in {UNCOMPRESSED[0]}")
        except RenderError as e:
            raise HTTPException(e.status, str(e)) from None
        boundary = new_boundary()
        ctype = f"application/octet-stream; transfer-syntax={ts_out}"
        return Response(
            b"".join(write_multipart(((ctype, iter([d])) for d in data), boundary)),
            media_type=f'multipart/related; type="application/octet-stream"; boundary={boundary}',
        )

    def rendered(
        self,
        request: Request,
        study: str,
        series: str | None,
        sop: str | None,
        frame: int,
        window: str | None,
        viewport: str | None,
        quality: int | None,
        accept_param: str | None,
    ) -> Response:
        row = _representative(self._find(request, study, series, sop))
        accept = accept_param or request.headers.get("accept")
        media_type = _pick_image(parse_accept(accept))
        if media_type is None:
            raise HTTPException(406, "rendered images are offered as image/jpeg or image/png")
        try:
            w = parse_window(window)
            vp = parse_viewport(viewport)
            ds = read(self.ctx.store.abspath(row.path))
            data = render(ds, frame, media_type, w, vp, quality or 90)
        except RenderError as e:
            raise HTTPException(e.status, str(e)) from None
        return Response(data, media_type=media_type)


#: Thumbnails fit within this many pixels unless the request gives a viewport (PS3.18 lets the
#: origin server choose the size).
THUMBNAIL_VIEWPORT = "128,128"


def _representative(rows: list[Instance]) -> Instance:
    """The instance a study or series thumbnail shows: an image (Rows known), lowest Instance
    Number, received before results."""
    images = [r for r in rows if r.rows] or rows
    return min(
        images,
        key=lambda r: (r.origin != "received", r.instance_number or 0, r.id),
    )


def _pick_image(ranges: list[MediaRange]) -> str | None:
    for r in ranges:
        for media_type in ("image/jpeg", "image/png"):
            if r.matches(media_type):
                return media_type
    return None


def _plan_dicom(ranges: list[MediaRange], rows: list[Instance]) -> list[str] | None:
    """For each instance, the transfer syntax to send (AS_STORED, or one to transcode to), from
    the first acceptable media range that serves every instance; None: nothing acceptable."""
    for r in ranges:
        if r.media_type == "multipart/related":
            if r.params.get("type", "application/dicom").lower() != "application/dicom":
                continue
        elif r.media_type not in ("*/*", "multipart/*"):
            continue
        wanted = r.params.get("transfer-syntax", AS_STORED).strip()
        plan: list[str] = []
        for row in rows:
            if wanted in (AS_STORED, row.transfer_syntax_uid):
                plan.append(AS_STORED)
            elif wanted in UNCOMPRESSED and row.transfer_syntax_uid in ACCEPTED_TRANSFER_SYNTAXES:
                plan.append(wanted)
            else:
                break
        else:
            return plan
    return None


def _lazy_transcode(path: Any, ts: str) -> Iterator[bytes]:
    try:
        yield to_uncompressed(read(path), ts)
    except RenderError as e:
        # headers are gone by now: end the stream short; the client sees a truncated body
        log.error("transcoding %s to %s failed: %s", path.name, ts, e)
        raise


def dicomweb_router(ctx: DicomWebContext) -> APIRouter:
    routes = DicomWebRoutes(ctx)
    router = APIRouter()
    router.include_router(stow_router(ctx))
    study_p = _uid_param("Study")
    series_p = _uid_param("Series")
    sop_p = _uid_param("SOP")

    # -- QIDO-RS
    qido_kw: dict[str, Any] = {"tags": ["QIDO-RS"], "responses": QIDO_RESPONSES}

    @router.get(
        "/studies",
        summary="Search for studies",
        openapi_extra={"parameters": _qido_params("study")},
        **qido_kw,
    )
    def search_studies(request: Request) -> JSONResponse:
        return routes.search(request, "study", ("study",))

    @router.get(
        "/series",
        summary="Search for series (all studies)",
        openapi_extra={"parameters": _qido_params("series")},
        **qido_kw,
    )
    def search_series(request: Request) -> JSONResponse:
        return routes.search(request, "series", ("study", "series"))

    @router.get(
        "/instances",
        summary="Search for instances (all studies)",
        openapi_extra={"parameters": _qido_params("instance")},
        **qido_kw,
    )
    def search_instances(request: Request) -> JSONResponse:
        return routes.search(request, "instance", ("study", "series", "instance"))

    @router.get(
        "/studies/{study}/series",
        summary="Search for series of a study",
        openapi_extra={"parameters": _qido_params("series")},
        **qido_kw,
    )
    def search_study_series(request: Request, study: str = study_p) -> JSONResponse:
        return routes.search(request, "series", ("series",), study)

    @router.get(
        "/studies/{study}/instances",
        summary="Search for instances of a study",
        openapi_extra={"parameters": _qido_params("instance")},
        **qido_kw,
    )
    def search_study_instances(request: Request, study: str = study_p) -> JSONResponse:
        return routes.search(request, "instance", ("series", "instance"), study)

    @router.get(
        "/studies/{study}/series/{series}/instances",
        summary="Search for instances of a series",
        openapi_extra={"parameters": _qido_params("instance")},
        **qido_kw,
    )
    def search_series_instances(
        request: Request, study: str = study_p, series: str = series_p
    ) -> JSONResponse:
        return routes.search(request, "instance", ("instance",), study, series)

    # -- WADO-RS
    wado: dict[str, Any] = {"tags": ["WADO-RS"], "response_class": Response}

    @router.get(
        "/studies/{study}", summary="Retrieve a study", responses=RETRIEVE_RESPONSES, **wado
    )
    def retrieve_study(request: Request, study: str = study_p) -> Response:
        return routes.retrieve(request, study)

    @router.get(
        "/studies/{study}/series/{series}",
        summary="Retrieve a series",
        responses=RETRIEVE_RESPONSES,
        **wado,
    )
    def retrieve_series(request: Request, study: str = study_p, series: str = series_p) -> Response:
        return routes.retrieve(request, study, series)

    @router.get(
        "/studies/{study}/series/{series}/instances/{sop}",
        summary="Retrieve an instance",
        responses=RETRIEVE_RESPONSES,
        **wado,
    )
    def retrieve_instance(
        request: Request, study: str = study_p, series: str = series_p, sop: str = sop_p
    ) -> Response:
        return routes.retrieve(request, study, series, sop)

    meta: dict[str, Any] = {"tags": ["WADO-RS"], "responses": METADATA_RESPONSES}

    @router.get("/studies/{study}/metadata", summary="Metadata of a study", **meta)
    def study_metadata(request: Request, study: str = study_p) -> JSONResponse:
        return routes.metadata(request, study)

    @router.get("/studies/{study}/series/{series}/metadata", summary="Metadata of a series", **meta)
    def series_metadata(
        request: Request, study: str = study_p, series: str = series_p
    ) -> JSONResponse:
        return routes.metadata(request, study, series)

    @router.get(
        "/studies/{study}/series/{series}/instances/{sop}/metadata",
        summary="Metadata of an instance",
        **meta,
    )
    def instance_metadata(
        request: Request, study: str = study_p, series: str = series_p, sop: str = sop_p
    ) -> JSONResponse:
        return routes.metadata(request, study, series, sop)

    @router.get(
        "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}",
        summary="Retrieve frames, uncompressed",
        responses=FRAMES_RESPONSES,
        **wado,
    )
    def retrieve_frames(
        request: Request,
        study: str = study_p,
        series: str = series_p,
        sop: str = sop_p,
        frames: str = PathParam(
            ..., description="frame numbers, 1-based, comma-separated", pattern=r"^\d+(,\d+)*$"
        ),
    ) -> Response:
        return routes.frames(request, study, series, sop, frames)

    window_q = Query(None, description="center,width,function (linear, linear-exact, sigmoid)")
    viewport_q = Query(None, description="vw,vh: fit within this many pixels")
    quality_q = Query(None, ge=1, le=100, description="JPEG quality")
    accept_q = Query(None, alias="accept", description="image/jpeg or image/png")

    @router.get(
        "/studies/{study}/series/{series}/instances/{sop}/rendered",
        summary="Render an instance (first frame) as JPEG or PNG",
        responses=RENDERED_RESPONSES,
        **wado,
    )
    def rendered_instance(
        request: Request,
        study: str = study_p,
        series: str = series_p,
        sop: str = sop_p,
        window: str | None = window_q,
        viewport: str | None = viewport_q,
        quality: int | None = quality_q,
        accept: str | None = accept_q,
    ) -> Response:
        return routes.rendered(request, study, series, sop, 1, window, viewport, quality, accept)

    @router.get(
        "/studies/{study}/series/{series}/instances/{sop}/frames/{frame}/rendered",
        summary="Render one frame as JPEG or PNG",
        responses=RENDERED_RESPONSES,
        **wado,
    )
    def rendered_frame(
        request: Request,
        study: str = study_p,
        series: str = series_p,
        sop: str = sop_p,
        frame: int = PathParam(..., ge=1, le=2**31 - 1, description="frame number, 1-based"),
        window: str | None = window_q,
        viewport: str | None = viewport_q,
        quality: int | None = quality_q,
        accept: str | None = accept_q,
    ) -> Response:
        return routes.rendered(
            request, study, series, sop, frame, window, viewport, quality, accept
        )

    thumb = {
        "responses": RENDERED_RESPONSES,
        **wado,
    }

    def thumbnail(
        request: Request,
        study: str,
        series: str | None,
        sop: str | None,
        viewport: str | None,
        accept: str | None,
    ) -> Response:
        """The first frame of the level's representative image, small (PS3.18 10.4.1.3)."""
        vp = viewport or THUMBNAIL_VIEWPORT
        return routes.rendered(request, study, series, sop, 1, None, vp, 85, accept)

    @router.get(
        "/studies/{study}/thumbnail",
        summary="A small rendering of the study's first image",
        **thumb,
    )
    def study_thumbnail(
        request: Request,
        study: str = study_p,
        viewport: str | None = viewport_q,
        accept: str | None = accept_q,
    ) -> Response:
        return thumbnail(request, study, None, None, viewport, accept)

    @router.get(
        "/studies/{study}/series/{series}/thumbnail",
        summary="A small rendering of the series' first image",
        **thumb,
    )
    def series_thumbnail(
        request: Request,
        study: str = study_p,
        series: str = series_p,
        viewport: str | None = viewport_q,
        accept: str | None = accept_q,
    ) -> Response:
        return thumbnail(request, study, series, None, viewport, accept)

    @router.get(
        "/studies/{study}/series/{series}/instances/{sop}/thumbnail",
        summary="A small rendering of an instance",
        **thumb,
    )
    def instance_thumbnail(
        request: Request,
        study: str = study_p,
        series: str = series_p,
        sop: str = sop_p,
        viewport: str | None = viewport_q,
        accept: str | None = accept_q,
    ) -> Response:
        return thumbnail(request, study, series, sop, viewport, accept)

    return router


def install(app: FastAPI, ctx: DicomWebContext) -> None:
    """Mount /dicom-web on the node's HTTP app: routes, 400 for bad parameters, auth in OpenAPI."""
    app.include_router(dicomweb_router(ctx), prefix=PREFIX)

    async def bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not request.url.path.startswith(PREFIX + "/"):
            return await request_validation_exception_handler(request, exc)
        # DICOMweb clients expect 400 for a bad parameter, not FastAPI's 422
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return JSONResponse({"detail": problems[:1000]}, status_code=400)

    app.add_exception_handler(RequestValidationError, bad_request)

    if ctx.guard.reads_need_auth or ctx.guard.writes_need_auth:
        _document_auth(app, writes_only=not ctx.guard.reads_need_auth)


def _document_auth(app: FastAPI, writes_only: bool) -> None:
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base_openapi()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "basic": {"type": "http", "scheme": "basic"},
        }
        for path, item in schema.get("paths", {}).items():
            if not path.startswith(PREFIX + "/"):
                continue
            for method, op in item.items():
                if writes_only and method != "post":
                    continue
                op["security"] = [{"bearer": []}, {"basic": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
