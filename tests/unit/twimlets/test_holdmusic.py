"""holdmusic: the bucket check, the suffix filter, the shuffle, public and presigned URLs."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from botocore.stub import Stubber

from chalicelib.guards import callers
from chalicelib.twimlets import holdmusic

from .support import assert_twiml, request, tree

BUCKET = "com.twilio.music.ambient"
KEYS = ["a.mp3", "b.MP3", "notes.txt", "dir/c d.wav", "x.ul", "y.wav.bak"]


@pytest.fixture(autouse=True)
def _aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unit-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-test-secret")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    holdmusic.reset()
    yield
    holdmusic.reset()


def pairs(document: str) -> Counter:
    """(track, message) pairs, a multiset: the order is shuffled."""
    _, _, _, children = tree(document)
    assert children[-1][0] == "Redirect"
    body = [(tag, text) for tag, attributes, text, _ in children[:-1] if not attributes]
    assert len(body) == len(children) - 1
    return Counter(zip(body[::2], body[1::2], strict=True))


def test_bucket_is_required():
    for query in ("", "Bucket=", "Bucket=%20%20"):
        assert_twiml(
            holdmusic.holdmusic(request(query)),
            "<Response><Say>An S 3 bucket is required.</Say></Response>",
        )


def test_audio_keys_are_filtered_case_sensitively():
    assert holdmusic.audio_keys(KEYS) == ["a.mp3", "dir/c d.wav", "x.ul"]


def test_public_url_keeps_the_original_encoding_over_https():
    assert holdmusic.public_url(BUCKET, "dir/c d~.wav") == (
        "https://com.twilio.music.ambient.s3.amazonaws.com/dir%2Fc+d%7E.wav"
    )


def test_playlist_example_as_a_multiset():
    urls = [holdmusic.public_url(BUCKET, key) for key in holdmusic.audio_keys(KEYS[:4])]
    document = holdmusic.playlist(urls, "Please hold", random.Random(1))
    say = ("Say", "Please hold")
    assert pairs(document) == Counter(
        {
            (("Play", f"https://{BUCKET}.s3.amazonaws.com/dir%2Fc+d.wav"), say): 1,
            (("Play", f"https://{BUCKET}.s3.amazonaws.com/a.mp3"), say): 1,
        }
    )


def test_playlist_shuffles():
    urls = [f"https://x/{n}.mp3" for n in range(20)]
    orders = {
        tuple(child[2] for child in tree(holdmusic.playlist(urls, None, random.Random(seed)))[3])
        for seed in range(5)
    }
    assert len(orders) > 1


@pytest.mark.parametrize(
    ("message", "between"),
    [
        (None, None),
        ("", None),
        ("  ", ("Say", {}, "  ", ())),  # the untrimmed test
        (" http://x.org/m.mp3", ("Play", {}, " http://x.org/m.mp3", ())),
    ],
)
def test_message_between_tracks(message, between):
    _, _, _, children = tree(holdmusic.playlist(["https://x/1.mp3"], message))
    expected = [("Play", {}, "https://x/1.mp3", ())]
    if between:
        expected.append(between)
    assert list(children) == [*expected, ("Redirect", {}, "", ())]


def test_no_tracks_is_the_failure_text():
    assert_twiml(
        holdmusic.playlist([], "Please hold"),
        "<Response><Say>Failed to fetch the hold music.</Say></Response>",
    )


def test_public_buckets_are_listed_unsigned_and_private_ones_signed():
    from botocore import UNSIGNED

    public = holdmusic.get_s3_client(signed=False)
    private = holdmusic.get_s3_client(signed=True)
    assert public.meta.config.signature_version is UNSIGNED
    assert private.meta.config.signature_version == "s3v4"
    assert public.meta.config.connect_timeout <= 1
    assert public.meta.config.read_timeout <= 2
    assert holdmusic.is_public("com.twilio.music.rock")
    assert not holdmusic.is_public("my-company-hold-music")


def _listing(client, bucket, keys, owner=None):
    stub = Stubber(client)
    stub.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": key} for key in keys], "IsTruncated": False},
        {"Bucket": bucket, **({"ExpectedBucketOwner": owner} if owner else {})},
    )
    return stub


def test_the_expected_owner_is_sent_with_the_listing():
    allowed = callers.allowed_buckets("my-music:123456789012")
    with _listing(holdmusic.get_s3_client(signed=True), "my-music", ["a.mp3"], "123456789012"):
        document = holdmusic.holdmusic(request("Bucket=my-music"), allowed)
    assert "<Play>" in document


@pytest.mark.parametrize(
    ("bucket", "setting"),
    [
        ("my-music", None),  # by default only Twilio's six
        ("com.twilio.music.jazz", None),  # not one of them, though under Twilio's prefix
        ("com.twilio.music.rock", "my-music"),  # the setting replaces the default
        ("other-music", "my-music"),
    ],
)
def test_buckets_not_allowed_are_not_listed(bucket, setting, caplog):
    # Deliberate departure: the original listed (and here would presign) any bucket named.
    client = holdmusic.get_s3_client(signed=not holdmusic.is_public(bucket))
    with Stubber(client):  # any call to S3 would fail: none is made
        document = holdmusic.holdmusic(
            request(f"Bucket={bucket}"), callers.allowed_buckets(setting)
        )
    assert_twiml(document, "<Response><Say>Failed to fetch the hold music.</Say></Response>")
    assert [r.getMessage() for r in caplog.records] == ["holdmusic refused: bucket not allowed"]


def test_public_listing_plays_public_urls():
    with _listing(holdmusic.get_s3_client(signed=False), BUCKET, KEYS):
        document = holdmusic.holdmusic(request(f"Bucket=%20{BUCKET}%20"))
    played = sorted(child[2] for child in tree(document)[3] if child[0] == "Play")
    assert played == sorted(
        holdmusic.public_url(BUCKET, key) for key in ("a.mp3", "dir/c d.wav", "x.ul")
    )


OWN = callers.allowed_buckets("twilio my-music")


def test_private_listing_plays_presigned_urls():
    with _listing(holdmusic.get_s3_client(signed=True), "my-music", ["hold.mp3"]):
        document = holdmusic.holdmusic(request("Bucket=my-music"), OWN)
    (url,) = [child[2] for child in tree(document)[3] if child[0] == "Play"]
    assert url.startswith("https://my-music.s3.amazonaws.com/hold.mp3?")
    assert "X-Amz-Signature=" in url
    assert f"X-Amz-Expires={holdmusic.PRESIGN_SECONDS}" in url


@pytest.mark.parametrize("error", ["NoSuchBucket", "AccessDenied"])
def test_listing_errors_are_the_failure_text(error):
    client = holdmusic.get_s3_client(signed=True)
    with Stubber(client) as stub:
        stub.add_client_error("list_objects_v2", service_error_code=error, http_status_code=403)
        document = holdmusic.holdmusic(request("Bucket=my-music"), OWN)
    assert_twiml(document, "<Response><Say>Failed to fetch the hold music.</Say></Response>")


def test_invalid_bucket_names_are_the_failure_text():
    document = holdmusic.holdmusic(request("Bucket=not/a%20bucket%3C%3E"))
    assert_twiml(document, "<Response><Say>Failed to fetch the hold music.</Say></Response>")
