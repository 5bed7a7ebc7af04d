"""Downloads are checked against a pinned sha256 before use (a fake network: nothing is fetched)."""

import hashlib
import io

import pytest

from earlyphase.empirical.data import cifar, idx, locate
from earlyphase.empirical.data.idx import MNIST_FILES


def _fake_network(monkeypatch, payloads):
    """urlopen serving ``payloads`` {url: bytes}; any other URL is unreachable."""
    requested = []

    def urlopen(url, timeout=None):
        requested.append(url)
        if url not in payloads:
            raise OSError(f"unreachable: {url}")
        return io.BytesIO(payloads[url])

    monkeypatch.setattr(locate.urllib.request, "urlopen", urlopen)
    return requested


def test_a_file_with_the_pinned_digest_is_kept(tmp_path, monkeypatch):
    payload = b"good bytes"
    _fake_network(monkeypatch, {"https://a/f.gz": payload})
    locate.download_files({"f.gz": ["https://a/f.gz"]}, tmp_path, {"f.gz": hashlib.sha256(payload).hexdigest()})
    assert (tmp_path / "f.gz").read_bytes() == payload


def test_a_mismatch_deletes_the_download_tries_the_next_mirror_then_fails_clearly(tmp_path, monkeypatch):
    good = b"good bytes"
    requested = _fake_network(monkeypatch, {"https://a/f.gz": b"tampered", "https://b/f.gz": b"also wrong"})
    with pytest.raises(OSError, match="sha256 mismatch") as error:
        locate.download_files(
            {"f.gz": ["https://a/f.gz", "https://b/f.gz"]}, tmp_path, {"f.gz": hashlib.sha256(good).hexdigest()}
        )
    assert requested == ["https://a/f.gz", "https://b/f.gz"]
    assert hashlib.sha256(good).hexdigest() in str(error.value) and "https://a/f.gz" in str(error.value)
    assert list(tmp_path.iterdir()) == []  # nothing kept, no partial file


def test_a_file_without_a_pinned_digest_is_never_downloaded(tmp_path, monkeypatch):
    requested = _fake_network(monkeypatch, {"https://a/f.gz": b"x"})
    with pytest.raises(ValueError, match="no pinned sha256"):
        locate.download_files({"f.gz": ["https://a/f.gz"]}, tmp_path, {})
    assert requested == []


def test_the_loader_refuses_a_tampered_download_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("EARLYPHASE_MNIST", raising=False)
    monkeypatch.delenv("EARLYPHASE_DATA", raising=False)
    urls = {f"{stem}.gz": [base + f"{stem}.gz" for base in idx.MNIST_URLS["mnist"]] for stem in MNIST_FILES.values()}
    _fake_network(monkeypatch, {mirrors[0]: b"\x1f\x8b not the real file" for mirrors in urls.values()})
    with pytest.raises(ValueError, match="sha256 mismatch"):
        idx.load_mnist_raw("mnist", None)
    assert not any((tmp_path / "earlyphase" / "mnist").iterdir())


def test_every_download_has_a_pinned_digest_and_an_https_first_mirror():
    tables = [
        (idx.MNIST_URLS[name], idx.MNIST_SHA256[name], [f"{stem}.gz" for stem in MNIST_FILES.values()])
        for name in idx.MNIST_URLS
    ]
    for bases, digests, files in tables:
        assert set(digests) == set(files)
        assert bases[0].startswith("https://")
    assert set(cifar.CIFAR_SHA256) == set(cifar.CIFAR_URLS)
    assert all(mirrors[0].startswith("https://") for mirrors in cifar.CIFAR_URLS.values())
    for digest in [*cifar.CIFAR_SHA256.values(), *(d for _, digests, _ in tables for d in digests.values())]:
        assert len(digest) == 64 and int(digest, 16) >= 0
