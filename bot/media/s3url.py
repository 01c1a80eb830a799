"""The `MEDIA_STORE` URL of an S3-compatible object store, read and checked (no network).

    s3://KEY:SECRET@host[:port]/bucket[/prefix][?secure=false&region=eu-central-1]

Key and secret are percent-encoded (a `/` in a secret is `%2F`). HTTPS unless `secure=false`.
`region` is needed only by services that insist on one. A prefix puts the files under a
"folder" of a bucket shared with other things: `…/bucket/tresen/media` keeps them as
`tresen/media/<sha256>`. Error messages never repeat the secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["S3Location", "S3UrlError", "parse_s3_url"]

# S3's rules for bucket names, which every compatible service follows: 3 to 63 lowercase
# letters, digits, dots and hyphens, beginning and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_REGION = re.compile(r"[a-z0-9-]{1,40}")
_YES = {"true", "1", "yes", "on"}
_NO = {"false", "0", "no", "off"}


class S3UrlError(ValueError):
    """What is wrong with the URL, in words that never include its secret."""


@dataclass(frozen=True)
class S3Location:
    endpoint: str  # host:port as a client connects to it ([…] around an IPv6 address)
    access_key: str
    secret_key: str = field(repr=False)
    bucket: str
    prefix: str = ""  # "" or ending in "/"
    secure: bool = True
    region: str | None = None

    def describe(self) -> str:
        """Where the files go, for logs and the console: no key, no secret."""
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.endpoint}/{self.bucket}/{self.prefix}"


def parse_s3_url(url: str) -> S3Location:
    """The location an `s3://` URL names; `S3UrlError` saying what is missing or wrong."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        raise S3UrlError("is not a URL of the form s3://KEY:SECRET@host:port/bucket") from None
    if parts.scheme != "s3":
        raise S3UrlError("must start with s3://")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    key, _, secret = (unquote(p) for p in userinfo.partition(":"))
    if not at or not key or not secret:
        raise S3UrlError(
            "needs the access key and secret: s3://KEY:SECRET@host:port/bucket "
            "(percent-encode any / ? # @ : in them, e.g. %2F for /)"
        )
    if not parts.hostname:
        raise S3UrlError("needs a host: s3://KEY:SECRET@host:port/bucket")
    try:
        port = parts.port
    except ValueError:
        raise S3UrlError("has a port that is not a number from 1 to 65535") from None
    if port == 0 or hostport.endswith(":"):
        raise S3UrlError("has a port that is not a number from 1 to 65535")
    bucket, _, prefix = parts.path.lstrip("/").partition("/")
    if not bucket:
        raise S3UrlError("needs a bucket: s3://KEY:SECRET@host:port/bucket")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise S3UrlError(
            f"names the bucket {bucket!r}; a bucket name is 3 to 63 lowercase letters, "
            "digits, dots and hyphens"
        )
    prefix = prefix.strip("/")
    if prefix and not _PREFIX.fullmatch(prefix):
        raise S3UrlError(
            f"has the prefix {prefix!r}; use letters, digits, '.', '_', '-' and '/' only"
        )
    if parts.fragment:
        raise S3UrlError("has a #fragment; remove it")
    secure, region = True, None
    seen: set[str] = set()
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in seen:
            raise S3UrlError(f"sets {name}= twice")
        seen.add(name)
        if name == "secure":
            if value.lower() not in _YES | _NO:
                raise S3UrlError("has a secure= that is neither true nor false")
            secure = value.lower() in _YES
        elif name == "region":
            if not _REGION.fullmatch(value):
                raise S3UrlError("has a region= that does not look like eu-central-1")
            region = value
        else:
            # The name is shown only if it looks like one: a secret with an unencoded ? in
            # it would otherwise be repeated here.
            shown = f"the option {name!r}" if re.fullmatch(r"[a-z_]{1,20}", name) else "an option"
            raise S3UrlError(f"has {shown}, which is unknown; known are secure and region")
    return S3Location(
        endpoint=hostport,
        access_key=key,
        secret_key=secret,
        bucket=bucket,
        prefix=f"{prefix}/" if prefix else "",
        secure=secure,
        region=region,
    )
