"""Great Expectations Data Docs served with their own assets: pages rewritten, and they open offline."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest

from fer_data.reports import gx_offline as gxo

JQ = "https://code.jquery.com/jquery-3.7.1.min.js"
POPPER = "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"
LOGO = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=20261201T1"


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def _cache(tmp: Path) -> Path:
    cache = tmp / "cache"
    (cache / "jquery@3.7.1/dist").mkdir(parents=True)
    (cache / "jquery@3.7.1/dist/jquery.min.js").write_text("window.jq = 1;")
    (cache / "jquery@3.7.1/LICENSE.txt").write_text("MIT")
    (cache / "popper.js@1.12.9/dist/umd").mkdir(parents=True)
    (cache / "popper.js@1.12.9/dist/umd/popper.min.js").write_text("window.Popper = 1;")
    return cache


def _site(tmp: Path, popper_sri: str) -> Path:
    site = tmp / "gx"
    (site / "static/images").mkdir(parents=True)
    (site / "static/images/logo-long.png").write_bytes(b"png")
    (site / "static/styles").mkdir(parents=True)
    (site / "static/styles/x.css").write_text(f".logo{{background:url('{LOGO}') 0 0}}")
    page = (
        f'<script src="{JQ}"></script>'
        f'<script src="{POPPER}" integrity="{popper_sri}" crossorigin="anonymous"></script>'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>'
        f'<img src="{LOGO}">'
    )
    (site / "index.html").write_text(page)
    (site / "validations/a/b").mkdir(parents=True)
    (site / "validations/a/b/run.html").write_text(page)
    return site


def test_pages_point_at_local_copies_relative_to_each_page(tmp_path):
    cache = _cache(tmp_path)
    site = _site(tmp_path, _sri(b"window.Popper = 1;"))
    left = gxo.localise(site, cache)
    index = (site / "index.html").read_text()
    deep = (site / "validations/a/b/run.html").read_text()
    assert '<script src="static/vendor/jquery@3.7.1/dist/jquery.min.js"></script>' in index
    assert '<script src="../../../static/vendor/jquery@3.7.1/dist/jquery.min.js"></script>' in deep
    # The integrity hash matched the local copy: checked, then dropped (browsers refuse it on file:).
    assert '<script src="static/vendor/popper.js@1.12.9/dist/umd/popper.min.js"></script>' in index
    assert '<img src="static/images/logo-long.png">' in index
    assert "url('../images/logo-long.png')" in (site / "static/styles/x.css").read_text()
    assert (site / "static/vendor/jquery@3.7.1/LICENSE.txt").read_text() == "MIT"
    # Not in the cache: left on its CDN, and reported.
    assert "https://cdn.jsdelivr.net/npm/vega@5" in index and "https://cdn.jsdelivr.net/npm/vega@5" in left
    assert JQ not in left


def test_a_copy_that_fails_its_integrity_hash_stays_on_the_cdn(tmp_path):
    cache = _cache(tmp_path)
    site = _site(tmp_path, _sri(b"something else"))
    gxo.localise(site, cache)
    index = (site / "index.html").read_text()
    assert f'src="{POPPER}" integrity=' in index


def test_unpack_keeps_the_loaded_files_their_companions_and_licences(tmp_path):
    files = {
        "package/css/all.min.css": b"css",
        "package/webfonts/fa-solid-900.woff2": b"font",
        "package/LICENSE.txt": b"licence",
        "package/package.json": b"{}",
        "package/js/all.js": b"not needed",
        "package/scss/x.scss": b"not needed",
    }
    tarball = tmp_path / "fa.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    gxo._unpack(tarball, "@fortawesome/fontawesome-free@6.6.0", tmp_path / "cache")
    got = sorted(p.relative_to(tmp_path / "cache").as_posix() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    base = "@fortawesome/fontawesome-free@6.6.0"
    assert got == sorted(
        f"{base}/{n}" for n in ("LICENSE.txt", "css/all.min.css", "package.json", "webfonts/fa-solid-900.woff2")
    )
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]


def test_every_cdn_url_of_the_installed_gx_templates_has_an_asset():
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    urls = set()
    for t in templates.rglob("*.j2"):
        urls |= set(re.findall(r"""(?:src|href)=["'](https?://[^"'{}]+)["']""", t.read_text()))
    assets = {a.url for a in gxo.ASSETS}
    links = {u for u in urls if not re.search(r"\.(js|css)$|/npm/", u)}  # plain links are not requests
    assert urls - links <= assets, sorted(urls - links - assets)


@pytest.fixture(scope="session")
def gx_assets() -> Path:
    """The set-up step's asset cache: fetched now when missing (npm and the registry), else skip."""
    if gxo.missing():
        try:
            gxo.fetch()
        except (RuntimeError, OSError) as exc:
            pytest.skip(f"Data Docs assets are not in the cache and cannot be fetched: {exc}")
    return gxo.cache_root()


@pytest.mark.slow
def test_data_docs_index_lists_every_run_offline(chromium, gx_assets, tmp_path):
    from browser import render
    from corpus_fixture import curate_demo

    from fer_data import params as params_mod
    from fer_data import validate as gxv

    tables = curate_demo(tmp_path / "work")
    refs = [gxv.TableRef.from_dir(v["curated"]) for v in tables.values()]
    report = gxv.validate_tables(refs, params_mod.resolve({}), None, tmp_path / "report")
    runs = [s.docs_page for r in report.sources for s in r.suites]
    assert len(runs) == 2 * len(tables) and all(runs)
    # bootstrap-table builds the index's rows in JavaScript: a row is only there if the scripts loaded.
    rows = "Array.from(document.querySelectorAll('tr.clickable-row')).map(r => r.dataset.href)"
    shown = render(tmp_path / "report/gx/index.html", tmp_path / "shots", binary=chromium, evaluate={"rows": rows})
    shown.assert_offline_complete(min_images=1)
    assert not shown.console, shown.console
    listed = {h for h in shown.values["rows"] if h.startswith("validations/")}
    assert listed == {Path(r).relative_to("gx").as_posix() for r in runs}  # every validation run, once
    page = render(tmp_path / "report" / runs[0], tmp_path / "shots", binary=chromium)
    assert not page.network_requests and not page.console
