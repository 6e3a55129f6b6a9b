"""The answers of `attrib serve` as pydantic models, for its OpenAPI description.

Each model describes a JSON object the endpoints already answer with: the records of ``attrib identify
--json`` and ``attrib verify --json`` (:meth:`IdentificationResult.to_json`, :meth:`Verification.to_json`,
their evidence items and provenance), the summary of ``attrib enroll --json`` (:meth:`EnrollReport.to_json`),
the generators of ``attrib gallery list --json`` (:class:`attrib.gallery.GeneratorInfo`) and the error
bodies. Models forbid keys they do not name, so the published schema says exactly which keys an answer
has. The endpoints document them with :func:`answers` (``responses=``): the answers themselves are the
dicts the library builds, never re-serialized through these models.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ..evidence.item import Verified as SignatureCheck
from ..scoring.decision import DecisionLevel


class Answer(BaseModel):
    """A JSON object with exactly the keys its model names."""

    model_config = ConfigDict(extra="forbid")


# --- error bodies -------------------------------------------------------------------------------------

class Problem(Answer):
    """Why a request was refused or failed."""

    detail: str = Field(description="What went wrong, in one line that names the bad value and the fix.")


class FieldProblem(BaseModel):
    """One problem with a request's fields, as FastAPI reports it (further keys may follow)."""

    loc: list[Union[str, int]] = Field(description="Where the problem is: the part of the request, then the field.")
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="The kind of problem (e.g. `missing`).")


class InvalidRequest(Answer):
    """A request whose fields do not fit the operation (FastAPI's own check, before any image is read)."""

    detail: list[FieldProblem] = Field(description="Each problem with the request's fields.")


# --- what a file says (attrib.evidence) ---------------------------------------------------------------

class EvidenceItem(Answer):
    """One claim a file makes about its origin (:class:`attrib.evidence.item.Evidence`)."""

    kind: str = Field(description="Where it was found: c2pa, generation-parameters, exif, xmp, watermark, "
                                  "or a plugin's own kind.")
    claim: str = Field(description="The raw text of the claim, on one line, clipped.")
    generator: Optional[str] = Field(description="The normalised generator it names (e.g. dall-e-3), or null.")
    label: Optional[str] = Field(description="The display name of that generator, or null.")
    ai_generated: Optional[bool] = Field(description="Whether the claim says the image is AI-generated; null "
                                                     "when it does not say.")
    verified: Optional[SignatureCheck] = Field(description="For signed evidence: valid (trusted signer), "
                                                              "untrusted or invalid; null when unsigned.")
    detail: dict[str, Any] = Field(description="Reader-specific details (small, JSON-safe; open-ended).")
    error: Optional[str] = Field(description="Why evidence that was there could not be read; null when read.")
    reader: str = Field(description="The reader that produced it.")
    known: Optional[bool] = Field(description="Whether the generator is one of the generator-name rules "
                                              "(true) or made from the file's own model name, e.g. a "
                                              "checkpoint's file name (false); null when none is named.")


class Agreement(Answer):
    """Whether the file's strongest claim agrees with the forensic answer."""

    generator: Optional[str] = Field(description="The generator the strongest naming claim names, or null.")
    label: Optional[str] = Field(description="Its display name, or null.")
    kind: Optional[str] = Field(description="The kind of that claim, or null.")
    verified: Optional[SignatureCheck] = Field(description="Its signature check (valid, untrusted, invalid), "
                                                              "or null.")
    ai_generated: Optional[bool] = Field(description="Whether the strongest claim says AI-generated, or null.")
    enrolled: Optional[bool] = Field(description="Whether the named generator is enrolled; null when none is named.")
    enrolled_as: Optional[str] = Field(description="Its name in the gallery when enrolled, else null.")
    agrees: Optional[bool] = Field(description="Whether the claim agrees with the forensic answer; null when "
                                               "there is nothing to compare.")
    reason: str = Field(description="Why, in one line.")


class Provenance(Answer):
    """What the file's own claims say, beside the forensic answer."""

    summary: Optional[str] = Field(description="`file says: ...` in one line; null when the file says nothing.")
    agreement: Agreement = Field(description="Whether the file's claim agrees with the forensic answer.")
    decision: str = Field(description="The decision reported (a file's verified claim may decide it).")
    decided_by: str = Field(description="`forensic`, or the kind of evidence that decided.")
    forensic_decision: str = Field(description="What the forensic model alone decided.")
    note: Optional[str] = Field(description="Why the evidence did not decide when asked to, else null.")


# --- identify and verify -------------------------------------------------------------------------------

LAYOUT = Field(alias="schema", description="The version of this object's layout.")
PATH = Field(description="The uploaded file's name.")
EVIDENCE = Field(description="What the file says about its origin, each claim found (may be empty).")
EXTRACTOR = Field(description="The extractor key (extractors joined by + when fused).")
SHA256 = Field(description="The SHA-256 of the uploaded bytes.")
ERROR = Field(description="Why the image could not be read, in the CLI's one line.")
RECORDS = Field(description="One record per uploaded image, in upload order.")
RECORDS_OR_ERRORS = Field(description="One record per uploaded image, in upload order; an error record for each "
                                      "unreadable one.")
FIRST_ERROR = Field(description="The first unreadable image's error, in the CLI's one line.")


class Candidate(Answer):
    """One enrolled generator's standing for a query."""

    generator: str = Field(description="The enrolled generator.")
    family: Optional[str] = Field(description="Its family, or null.")
    score: float = Field(description="The query's similarity score to it.")
    threshold: float = Field(description="Its calibrated acceptance threshold.")
    margin: float = Field(description="score - threshold.")
    confidence: float = Field(description="P(the query comes from this generator | its margin).")


class Exemplar(Answer):
    """An enrolled sample near the query."""

    path: str = Field(description="The sample's path as enrolled.")
    sha256: str = Field(description="The sample's SHA-256.")
    similarity: float = Field(description="Its similarity to the query.")


class ExplainedCandidate(Candidate):
    """A candidate with the enrolled samples nearest the query."""

    exemplars: list[Exemplar] = Field(description="The nearest enrolled samples of this generator.")
    per_extractor: Optional[dict[str, float]] = Field(
        None, description="Each extractor's own score; present only when extractors are fused.")


class Explanation(Answer):
    """Why: the top candidates with their exemplars, and what makes the query special."""

    candidates: list[ExplainedCandidate] = Field(description="The top candidates, with exemplars.")
    flags: list[str] = Field(description="Warnings about the query: an exact copy of an enrolled sample, "
                                         "recompression, an uncalibrated gallery.")


class MeasuredDelivery(Answer):
    """Every fact measured of a file's way (:class:`attrib.delivery.Delivery`)."""

    format: str = Field(description="The container: JPEG, WEBP, PNG, BMP, TIFF, GIF, ...")
    coding: str = Field(description="`jpeg`, `lossy-webp` or `lossless`.")
    width: int
    height: int
    jpeg_quality: Optional[int] = Field(description="JPEG files: the IJG quality of the quantisation tables.")
    standard_tables: Optional[bool] = Field(description="JPEG files: the tables are libjpeg's scaled standard ones.")
    chroma_subsampling: Optional[str] = Field(description="JPEG files: 4:4:4, 4:2:2 or 4:2:0.")
    webp_quantizer: Optional[int] = Field(description="Lossy WebP: the VP8 quantiser index (0-127).")
    webp_quality: Optional[int] = Field(description="Lossy WebP: the libwebp quality that index implies.")
    alpha: bool = Field(description="WebP: an alpha channel is stored.")
    animated: bool = Field(description="WebP: more than a still frame.")
    jpeg_before: bool = Field(description="Lossless files: the pixels were JPEG-coded before.")
    estimated_quality: Optional[int] = Field(description="... and the IJG quality that fits them best.")
    confidence: float = Field(description="0-1: how clearly the pixels show, or lack, the JPEG grid.")
    scale: Optional[float] = Field(description="Long side over the nearest enrolled long side, when measured.")
    describe: str = Field(description="The same in a few words.")


class DeliveryAnswer(Answer):
    """How the file travelled, measured from it, and the gallery's delivery version it was scored against."""

    describe: str = Field(description="A few words: `JPEG q≈80`, `lossless PNG, JPEG-coded before (q≈75)`, ...")
    version: str = Field(description="The version scored against: `original`, or a rung such as `jpeg:80`.")
    versions: list[str] = Field(description="The versions the gallery holds for every sample, `original` first.")
    measured: MeasuredDelivery = Field(description="Every measured fact.")


DELIVERY = Field(description="The query's delivery and the version it was scored against (null when it "
                             "could not be measured).")


class Identification(Answer):
    """One image identified (one `attrib identify --json` record)."""

    layout: int = LAYOUT
    path: str = PATH
    sha256: str = SHA256
    decision: str = Field(description="A generator, a family, `ambiguous` or `unknown`.")
    decision_level: DecisionLevel = Field(
        description="Which of those the decision is.")
    generator: Optional[str] = Field(description="The generator decided; null unless one generator was decided.")
    family: Optional[str] = Field(description="The family decided or the decided generator's family, else null.")
    nearest: str = Field(description="The best-scoring generator, whatever the decision.")
    score: float = Field(description="The nearest generator's score.")
    threshold: float = Field(description="The nearest generator's threshold.")
    margin: float = Field(description="score - threshold of the nearest generator.")
    confidence: Optional[float] = Field(description="The decision's calibrated confidence; null when the "
                                                    "file's verified evidence decided.")
    reason: str = Field(description="Why, in one line.")
    decided_by: str = Field(description="`forensic`, or the kind of evidence that decided.")
    candidates: list[Candidate] = Field(description="The top candidates, best first.")
    extractor: str = EXTRACTOR
    delivery: Optional[DeliveryAnswer] = DELIVERY
    evidence: list[EvidenceItem] = EVIDENCE
    provenance: Provenance = Field(description="What the file's claims say, beside the forensic answer.")
    explain: Explanation = Field(description="The candidates' nearest exemplars and the query's flags.")


class IdentificationFailure(Answer):
    """An image that could not be identified (one `attrib identify --json` error record)."""

    layout: int = LAYOUT
    path: str = PATH
    error: str = ERROR
    evidence: list[EvidenceItem] = EVIDENCE


class Verification(Answer):
    """One image verified against a generator (one `attrib verify --json` record)."""

    layout: int = LAYOUT
    path: str = PATH
    sha256: str = SHA256
    generator: str = Field(description="The generator verified against.")
    score: float = Field(description="The image's score for that generator.")
    threshold: float = Field(description="The generator's threshold.")
    margin: float = Field(description="score - threshold.")
    match: bool = Field(description="Whether the score reaches the threshold.")
    confidence: float = Field(description="P(the image is from the generator | its margin).")
    extractor: str = EXTRACTOR
    delivery: Optional[DeliveryAnswer] = DELIVERY
    evidence: list[EvidenceItem] = EVIDENCE
    provenance: Provenance = Field(description="What the file's claims say, beside the match.")


class VerificationFailure(Answer):
    """An image that could not be verified (one `attrib verify --json` error record)."""

    layout: int = LAYOUT
    path: str = PATH
    generator: str = Field(description="The generator asked for.")
    error: str = ERROR
    evidence: list[EvidenceItem] = EVIDENCE


class Identified(Answer):
    """Every uploaded image identified, in upload order."""

    results: list[Identification] = RECORDS


class IdentifyFailed(Answer):
    """An uploaded image could not be read: the first error, and every image's record."""

    detail: str = FIRST_ERROR
    results: list[Union[Identification, IdentificationFailure]] = RECORDS_OR_ERRORS


class Verified(Answer):
    """Every uploaded image verified, in upload order."""

    results: list[Verification] = RECORDS


class VerifyFailed(Answer):
    """An uploaded image could not be read: the first error, and every image's record."""

    detail: str = FIRST_ERROR
    results: list[Union[Verification, VerificationFailure]] = RECORDS_OR_ERRORS


# --- enroll, remove, list, health -------------------------------------------------------------------

class Skipped(Answer):
    """An upload not enrolled because it is enrolled already."""

    path: str = PATH
    reason: str = Field(description="Why it was skipped.")


class NotEnrolled(Answer):
    """An upload that could not be enrolled."""

    path: str = PATH
    error: str = Field(description="Why, in the CLI's one line.")


class Enrolled(Answer):
    """What one enroll did (the summary `attrib enroll --json` prints)."""

    generator: str = Field(description="The generator enrolled under.")
    extractor: str = EXTRACTOR
    added: list[str] = Field(description="The uploads enrolled, by name.")
    skipped: list[Skipped] = Field(description="The uploads already enrolled.")
    failed: list[NotEnrolled] = Field(description="The uploads that could not be enrolled.")
    calibration: str = Field(description="What recalibration did, in one line.")
    versions: list[str] = Field(description="The delivery versions each image was also embedded for (`jpeg:80`, ...).")


class EnrollFailed(Enrolled):
    """Some uploads could not be enrolled: the first error, and the summary."""

    detail: str = Field(description="The first failed upload's error.")


class Removed(Answer):
    """A generator removed."""

    removed: str = Field(description="The generator removed.")
    samples: int = Field(description="How many enrolled samples went with it.")


class GeneratorEntry(Answer):
    """One enrolled generator, as `attrib gallery list --json` lists it."""

    name: str = Field(description="The generator's name.")
    family: Optional[str] = Field(description="Its family, or null.")
    note: Optional[str] = Field(description="The note given at enrollment, or null.")
    samples: int = Field(description="How many samples are enrolled.")
    threshold: Optional[float] = Field(description="Its calibrated threshold; null until calibrated.")
    threshold_method: Optional[str] = Field(description="How the threshold was set; null until calibrated.")
    created_at: str = Field(description="When it was first enrolled (ISO 8601).")


class Generators(Answer):
    """The enrolled generators."""

    generators: list[GeneratorEntry] = Field(description="Every enrolled generator.")


class Health(Answer):
    """The server is up."""

    status: Literal["ok"] = Field(description="Always `ok`.")
    version: str = Field(description="The attrib version serving.")
    extractor: str = EXTRACTOR


# --- which answers each endpoint documents -----------------------------------------------------------

WHY = {
    400: "The request or the gallery is not usable as asked (the detail says why).",
    401: "The bearer token is missing or wrong.",
    403: "The server has no token set (ATTRIB_TOKEN), so this is turned off.",
    404: "The generator is not enrolled.",
    409: "The gallery is empty: enroll generators first.",
    413: "The request body, or one image's pixels, is over the server's limit.",
    422: "A field of the request is invalid (FastAPI's check).",
    503: "The gallery is busy: another writer holds it; try again.",
    507: "The gallery cannot be written (read-only or the disk is full).",
}


def answers(ok: type[BaseModel], *statuses: int, unreadable: type[BaseModel] | None = None
            ) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: ``ok`` for 200 and :class:`Problem` for each of ``statuses`` (for 422,
    FastAPI's :class:`InvalidRequest`); with ``unreadable`` (the answer when an uploaded image cannot be
    read), 422 is that or :class:`InvalidRequest`."""
    documented: dict[int | str, dict[str, Any]] = {200: {"model": ok, "description": describe(ok)}}
    for status in statuses:
        documented[status] = {"model": InvalidRequest if status == 422 else Problem, "description": WHY[status]}
    if unreadable is not None:
        documented[422] = {"model": Union[unreadable, InvalidRequest],
                           "description": f"{describe(unreadable)} Or: {WHY[422]}"}
    return documented


def describe(model: type[BaseModel]) -> str:
    """The first line of a model's docstring."""
    assert model.__doc__, f"{model.__name__} has no docstring to describe it"
    return model.__doc__.strip().splitlines()[0]
