"""The holdmusic twimlet: an S3 bucket's audio files, shuffled, in a loop."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from twilio.twiml.voice_response import VoiceResponse

from chalicelib.aws import clients
from chalicelib.guards import callers
from chalicelib.twimlets import phpargs
from chalicelib.twimlets.common import Inputs, add_message, php_urlencode, read, text

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

BUCKET_REQUIRED = "An S 3 bucket is required."
FETCH_FAILED = "Failed to fetch the hold music."
# Twilio's public music buckets are listed without credentials and played by their public URL;
# any other bucket is the operator's own: listed with the function's role, played presigned.
PUBLIC_PREFIX = "com.twilio.music."
# Case-sensitive, as the original: "b.MP3" is skipped.
AUDIO_SUFFIXES = (".mp3", ".wav", ".ul")
# Well under Twilio's 15 s: at most 2 attempts of 1 s connect + 2 s read.
# A playlist is replayed (and presigned again) after its last track; long enough for any list.
PRESIGN_SECONDS = 6 * 3600


class HoldMusicError(Exception):
    """The bucket could not be listed."""


def is_public(bucket: str) -> bool:
    """Twilio's public music buckets, listed unsigned."""
    return bucket.startswith(PUBLIC_PREFIX)


def public_url(bucket: str, key: str) -> str:
    """The original's public URL form, over https; the key PHP-urlencoded ("/" as %2F)."""
    return f"https://{bucket}.s3.amazonaws.com/{php_urlencode(key)}"


def audio_keys(keys: list[str]) -> list[str]:
    """The keys the original played: .mp3, .wav and .ul, case-sensitively."""
    return [key for key in keys if key.endswith(AUDIO_SUFFIXES)]


def playlist(urls: list[str], message: str | None, rng: random.Random | None = None) -> str:
    """Each track shuffled, Message after every one, then a bare <Redirect/> to start over."""
    response = VoiceResponse()
    if not urls:
        response.say(FETCH_FAILED)
        return str(response)
    shuffled = list(urls)
    (rng or random).shuffle(shuffled)
    for url in shuffled:
        response.play(text(url))
        add_message(response, message, trimmed=False)
    response.redirect("")
    return str(response)


def get_s3_client(*, signed: bool) -> Any:
    """This container's S3 client, signed or anonymous (public buckets), with short timeouts."""
    return clients.client(
        "s3",
        # Presigned URLs must be SigV4: botocore would presign S3 with SigV2 by default.
        signature="s3v4" if signed else "unsigned",
    )


def reset() -> None:
    """Forget the AWS clients, so the next request uses the current environment (tests)."""
    clients.reset()


def track_urls(bucket: str, owner: str | None = None) -> list[str]:
    """The URLs of a bucket's audio files, from one listing of up to 1,000 keys.

    With owner, S3 refuses the listing (403) unless that AWS account owns the bucket, so a
    bucket deleted and re-created under the same name by someone else plays nothing.

    Raises:
        HoldMusicError: the bucket could not be listed (missing, private, unreachable, slow).
    """
    # Only where AWS is called: /voice and the twimlets that write nothing load no botocore.
    from botocore.exceptions import BotoCoreError, ClientError

    public = is_public(bucket)
    client = get_s3_client(signed=not public)
    try:
        listing = client.list_objects_v2(
            Bucket=bucket, **({"ExpectedBucketOwner": owner} if owner else {})
        )
        keys = audio_keys([item["Key"] for item in listing.get("Contents", [])])
        if public:
            return [public_url(bucket, key) for key in keys]
        return [
            client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS
            )
            for key in keys
        ]
    except (BotoCoreError, ClientError) as exc:
        raise HoldMusicError(type(exc).__name__) from exc


def holdmusic(inputs: Inputs, allowed: dict[str, callers.Bucket] | None = None) -> str:
    """The bucket's shuffled playlist, or the original's spoken error.

    Only buckets in allowed (default: Twilio's six public ones) are listed. Deliberate
    departure from the original, which listed any bucket a URL named: here a URL could
    otherwise make the app list, and presign with its own role, any bucket that role can read.
    """
    bucket = phpargs.trim(inputs.conf("Bucket") or "")
    if not bucket:
        response = VoiceResponse()
        response.say(BUCKET_REQUIRED)
        return str(response)
    entry = (callers.allowed_buckets(None) if allowed is None else allowed).get(bucket)
    if entry is None:
        logger.warning(
            "holdmusic refused: bucket not allowed",
            extra={"bucket": bucket[:63], "parameter": callers.BUCKETS_PARAMETER},
        )
        return playlist([], None)
    try:
        urls = track_urls(bucket, entry.owner)
    except HoldMusicError as exc:
        logger.warning("hold music bucket not listed", extra={"bucket": bucket, "error": str(exc)})
        urls = []
    return playlist(urls, inputs.conf("Message"))


def holdmusic_webhook(verified: VerifiedRequest, parameters: Parameters) -> str:
    """GET/POST /twimlets/holdmusic."""
    allowed = callers.allowed_buckets(parameters.optional(callers.BUCKETS_PARAMETER))
    return holdmusic(read(verified), allowed)
