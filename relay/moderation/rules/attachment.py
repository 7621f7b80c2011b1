"""The attachment rule: files whose type, size or number the program does not allow, archives and executables.

Each attachment is one of three things. An executable (a program, a script, an installer, an Office file
with macros) or an archive (which may hide anything) is known by its content type or by its file name's
extension, since mail clients often send application/octet-stream, and is flagged unless the program allows
that category; an executable disguised behind a harmless first extension ("photo.jpg.exe") is still an
executable. Anything else must have one of the allowed types; an application/octet-stream file is judged by
the type its extension stands for. Size (per attachment) and count are checked whatever the file is.

Attachments are not in the text, so findings have offsets -1 and their match names the file.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from relay.moderation.findings import Finding
from relay.moderation.inspection import Attachment, Inspection
from relay.sizes import parse_size

NAME = "attachment"

Size = Annotated[int, BeforeValidator(parse_size)]
Allowance = Literal["allow", "flag"]

DEFAULT_ALLOWED_TYPES = (  # not image/*: SVG is an image type that can carry script
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/heif",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/rtf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.*",
    "application/vnd.oasis.opendocument.*",
)

_EXECUTABLE_EXTENSIONS = frozenset({
    "exe", "msi", "bat", "cmd", "com", "scr", "pif", "cpl", "js", "jse", "vbs", "vbe", "wsf", "hta", "jar", "apk",
    "app", "dmg", "pkg", "sh", "ps1", "lnk", "docm", "dotm", "xlsm", "xltm", "pptm",
})  # fmt: skip
_EXECUTABLE_TYPES = frozenset({
    "application/x-msdownload", "application/x-msdos-program", "application/x-ms-installer", "application/x-msi",
    "application/vnd.microsoft.portable-executable", "application/x-dosexec", "application/x-executable",
    "application/x-sh", "application/x-shellscript", "text/x-sh", "application/x-bat", "application/javascript",
    "text/javascript", "application/x-javascript", "text/vbscript", "application/java-archive",
    "application/vnd.android.package-archive", "application/x-apple-diskimage",
    "application/vnd.ms-word.document.macroenabled.12", "application/vnd.ms-excel.sheet.macroenabled.12",
    "application/vnd.ms-powerpoint.presentation.macroenabled.12",
})  # fmt: skip
_ARCHIVE_EXTENSIONS = frozenset({"zip", "rar", "7z", "tar", "gz", "tgz", "bz2", "tbz2", "xz"})
_ARCHIVE_TYPES = frozenset({
    "application/zip", "application/x-zip-compressed", "application/x-rar-compressed", "application/vnd.rar",
    "application/x-7z-compressed", "application/x-tar", "application/gzip", "application/x-gzip",
    "application/x-bzip2", "application/x-bzip", "application/x-xz", "application/x-compressed",
})  # fmt: skip
# The type an application/octet-stream attachment is judged by, from its extension.
_TYPES_BY_EXTENSION = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
    "heic": "image/heic", "heif": "image/heif", "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff",
    "pdf": "application/pdf", "txt": "text/plain", "csv": "text/csv", "rtf": "application/rtf",
    "doc": "application/msword", "xls": "application/vnd.ms-excel", "ppt": "application/vnd.ms-powerpoint",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text", "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
}  # fmt: skip
_GENERIC_TYPES = frozenset({"", "application/octet-stream"})


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_types: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_TYPES))  # globs: "image/*"
    max_size: Size = parse_size("10MB")  # per attachment
    max_count: int = Field(5, ge=0, le=1000, strict=True)
    archives: Allowance = "flag"
    executables: Allowance = "flag"

    @field_validator("allowed_types")
    @classmethod
    def _lower_case(cls, patterns: list[str]) -> list[str]:
        return [pattern.strip().lower() for pattern in patterns]


def check(inspection: Inspection, params: Params) -> list[Finding]:
    findings = [finding for attachment in inspection.attachments for finding in _judge(attachment, params)]
    count = len(inspection.attachments)
    if count > params.max_count:
        findings.append(_finding("too_many", f"{count} attachments (at most {params.max_count})"))
    return findings


def _judge(attachment: Attachment, params: Params) -> list[Finding]:
    content_type = attachment.content_type.split(";", 1)[0].strip().lower()
    label = attachment.filename or f"unnamed {content_type or 'attachment'}"
    extension = _extension(attachment.filename or "")
    findings: list[Finding] = []
    if extension in _EXECUTABLE_EXTENSIONS or content_type in _EXECUTABLE_TYPES:
        if params.executables == "flag":
            findings.append(_finding("executable", label))
    elif extension in _ARCHIVE_EXTENSIONS or content_type in _ARCHIVE_TYPES:
        if params.archives == "flag":
            findings.append(_finding("archive", label))
    elif not _allowed(_effective_type(content_type, extension), params.allowed_types):
        findings.append(_finding("type_not_allowed", label))
    if attachment.size > params.max_size:
        findings.append(_finding("too_large", label))
    return findings


def _extension(filename: str) -> str:
    """The extension a computer acts on: the last one, once invisible characters that reorder a name on screen
    ("photo\u202egpj.exe" shows as "photoexe.jpg") and the dots and spaces Windows ignores at its end are gone."""
    name = "".join(char for char in filename if unicodedata.category(char) != "Cf").rstrip(" .")
    stem, dot, extension = name.rpartition(".")
    return extension.strip().lower() if dot and stem else ""


def _effective_type(content_type: str, extension: str) -> str:
    if content_type in _GENERIC_TYPES:
        return _TYPES_BY_EXTENSION.get(extension, content_type)
    return content_type


def _allowed(content_type: str, allowed_types: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(content_type, pattern) for pattern in allowed_types)


def _finding(kind: str, match: str) -> Finding:
    return Finding(rule=NAME, kind=kind, match=match, start=-1, end=-1)
