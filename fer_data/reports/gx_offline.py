"""Great Expectations Data Docs that open on an air-gapped machine: their CDN assets served locally.

GX 1.24.1's page templates load bootstrap, jQuery, bootstrap-table, Vega, Font Awesome and a
logo from CDNs and S3, so offline the index is an empty, unstyled page (its table of validation
runs is built by bootstrap-table in JavaScript). Two steps fix that:

- set-up (`python -m fer_data.reports.gx_offline`, run by run.py): `npm pack` fetches the exact
  package versions the templates name from the npm registry, once, into the fer-data cache
  (`gx-assets/`), keeping only the files the pages load and each package's licence;
- after every Data Docs build (`localise`, called from `Validator.build_docs`): those files are
  copied into the site's `static/vendor/` and every page's CDN URL is rewritten to a relative
  path. GX's logo, fetched from S3 with a timestamp query, is pointed at the copy GX already
  writes to `static/images/`.

When the cache lacks an asset (set-up never ran, or had no registry) the pages keep that URL,
and `localise` says which: the docs still work online.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("fer_data.reports.gx_offline")


@dataclass(frozen=True)
class Asset:
    """One URL of GX's templates, and where the same file is inside an npm package."""

    url: str
    package: str  # name@version, exactly the version the URL names (or, for a range, a pinned release of it)
    path: str  # inside the package
    companions: str | None = None  # a folder the file loads relatively (Font Awesome's ../webfonts)


# Every external script and stylesheet of great_expectations 1.24.1's Data Docs templates
# (render/view/templates/*.j2, checked by grepping the installed package and built pages).
# vega@5, vega-lite@5 and vega-embed@6 are ranges on jsDelivr: pinned to their newest release
# when this was written, the file jsDelivr serves for them (package.json "jsdelivr").
ASSETS: tuple[Asset, ...] = (
    Asset("https://code.jquery.com/jquery-3.7.1.min.js", "jquery@3.7.1", "dist/jquery.min.js"),
    Asset(
        "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js",
        "popper.js@1.12.9",
        "dist/umd/popper.min.js",
    ),
    Asset(
        "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css",
        "bootstrap@4.3.1",
        "dist/css/bootstrap.min.css",
    ),
    Asset(
        "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js",
        "bootstrap@4.3.1",
        "dist/js/bootstrap.min.js",
    ),
    Asset(
        "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css",
        "bootstrap-table@1.19.1",
        "dist/bootstrap-table.min.css",
    ),
    Asset(
        "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js",
        "bootstrap-table@1.19.1",
        "dist/bootstrap-table.min.js",
    ),
    Asset(
        "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
        "bootstrap-table@1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    Asset(
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
        "bootstrap-table@1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    Asset(
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
        "bootstrap-table@1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    Asset(
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
        "bootstrap-datepicker@1.9.0",
        "dist/css/bootstrap-datepicker.min.css",
    ),
    Asset(
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
        "bootstrap-datepicker@1.9.0",
        "dist/js/bootstrap-datepicker.min.js",
    ),
    Asset(
        "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
        "@forevolve/bootstrap-dark@1.1.0",
        "dist/css/bootstrap-prefers-dark.css",
    ),
    Asset(
        "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css",
        "@fortawesome/fontawesome-free@6.6.0",
        "css/all.min.css",
        companions="webfonts",
    ),
    Asset("https://cdn.jsdelivr.net/npm/vega@5", "vega@5.33.1", "build/vega.min.js"),
    Asset("https://cdn.jsdelivr.net/npm/vega-lite@5", "vega-lite@5.23.0", "build/vega-lite.min.js"),
    Asset("https://cdn.jsdelivr.net/npm/vega-embed@6", "vega-embed@6.29.0", "build/vega-embed.min.js"),
)
# Licence texts kept beside each package's files (package.json too: it names the licence of the
# packages that ship no licence file, popper.js 1.12.9 and vega 5.33.1; their headers carry it too).
LICENCE = re.compile(r"^(licen[cs]e|copying|notice)([.-][\w.]+)?$|^package\.json$", re.IGNORECASE)
# GX's logos come from S3 with a timestamp query (a tracking pixel in effect); GX writes the same
# logo to the site's static/images, which the pages are pointed at instead.
LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/([\w.-]+\.png)(\?[^\"')\s]*)?"
)
LOCAL_LOGO = "logo-long.png"
VENDOR = Path("static") / "vendor"
TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
INTEGRITY = re.compile(r'\s+integrity="(sha(?:256|384|512)-[A-Za-z0-9+/=]+)"')
CROSSORIGIN = re.compile(r'\s+crossorigin="[^"]*"')
NPM_TIMEOUT_S = 300  # all packages together are ~19 MB of tarballs


def cache_root() -> Path:
    """gx-assets/ in fer-data's cache (FER_DATA_CACHE, else the XDG cache): shared by every checkout."""
    from fer_data.faces.ert import cache_dir

    return cache_dir() / "gx-assets"


def _dir_name(package: str) -> Path:
    """'@fortawesome/fontawesome-free@6.6.0' -> @fortawesome/fontawesome-free@6.6.0 (a folder per version)."""
    return Path(package)


def missing(cache: Path | None = None) -> list[Asset]:
    """Assets whose file is not in the cache yet."""
    cache = cache or cache_root()
    return [a for a in ASSETS if not (cache / _dir_name(a.package) / a.path).is_file()]


def fetch(cache: Path | None = None, npm: str = "npm") -> list[str]:
    """Set-up: `npm pack` each package with a missing asset into CACHE; returns the packages fetched.

    Each package is unpacked in a temporary folder and moved into place whole, so a failed
    download leaves no half package behind. Raises RuntimeError with npm's message on failure.
    """
    cache = cache or cache_root()
    wanted = sorted({a.package for a in missing(cache)})
    if not wanted:
        return []
    if not shutil.which(npm):
        raise RuntimeError(f"`{npm}` not found: install Node.js' npm to fetch the Data Docs assets")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        done = subprocess.run(
            [npm, "pack", "--json", "--pack-destination", tmp, *wanted],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"npm pack failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        for entry in json.loads(done.stdout):  # one per package: {"id": "name@version", "filename": ...}
            _unpack(Path(tmp) / entry["filename"], entry["id"], cache)
    return wanted


def _unpack(tarball: Path, package: str, cache: Path) -> None:
    """The files of PACKAGE that pages load, its companions and licence files, moved into CACHE at once."""
    needed = [a for a in ASSETS if a.package == package]
    keep = {f"package/{a.path}" for a in needed}
    folders = tuple(f"package/{a.companions}/" for a in needed if a.companions)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".unpack-"))
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = member.name
            top_level = name.count("/") == 1 and LICENCE.match(name.split("/", 1)[1])
            if member.isfile() and (name in keep or name.startswith(folders) or top_level):
                tar.extract(member, staging, filter="data")
    target = cache / _dir_name(package)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging / "package", target)
    shutil.rmtree(staging, ignore_errors=True)


def localise(site: Path, cache: Path | None = None) -> list[str]:
    """Serve SITE's CDN assets from SITE/static/vendor and rewrite its pages; returns URLs left remote."""
    cache = cache or cache_root()
    have = [a for a in ASSETS if (cache / _dir_name(a.package) / a.path).is_file()]
    for package in sorted({a.package for a in have}):
        dest = site / VENDOR / _dir_name(package)
        if not dest.exists():
            shutil.copytree(cache / _dir_name(package), dest)
    targets = {a.url: site / VENDOR / _dir_name(a.package) / a.path for a in have}
    for page in [*site.rglob("*.html"), *(site / "static" / "styles").glob("*.css")]:
        text = page.read_text(encoding="utf-8")
        new = _rewrite(text, page.parent, targets, site)
        if new != text:
            page.write_text(new, encoding="utf-8")
    left = sorted({a.url for a in ASSETS} - targets.keys())
    if left:
        log.warning(
            "Data Docs need the internet for %d asset(s) (run `python -m fer_data.reports.gx_offline`): %s",
            len(left),
            ", ".join(left),
        )
    return left


def _rewrite(text: str, here: Path, targets: dict[str, Path], site: Path) -> str:
    """TEXT with its <script>/<link> tags pointed at the local copies (paths relative to HERE), and
    GX's S3 logos pointed at the site's own static/images."""

    def tag(m: re.Match) -> str:
        return _local_tag(m.group(0), here, targets)

    text = TAG.sub(tag, text)
    images = site / "static" / "images"

    def logo(m: re.Match) -> str:
        name = m.group(1) if (images / m.group(1)).is_file() else LOCAL_LOGO
        return os.path.relpath(images / name, here).replace(os.sep, "/")

    return LOGO.sub(logo, text)


def _local_tag(tag: str, here: Path, targets: dict[str, Path]) -> str:
    """One tag with its CDN URL replaced by the local copy's relative path.

    A tag with Subresource Integrity (bootstrap's and popper's script tags) is checked against
    the local file first: the hashes match the npm files byte for byte, and the attributes are
    then dropped, because a browser refuses integrity and crossorigin on file: URLs. A copy that
    does not match keeps its CDN URL (and is reported).
    """
    url = next((u for u in sorted(targets, key=len, reverse=True) if f'"{u}"' in tag), None)
    if url is None:
        return tag
    target = targets[url]
    sri = INTEGRITY.search(tag)
    if sri:
        algo, expected = sri.group(1).split("-", 1)
        actual = base64.b64encode(hashlib.new(algo, target.read_bytes()).digest()).decode()
        if actual != expected:
            log.warning("%s does not match the integrity hash of %s: left on the CDN", target, url)
            return tag
        tag = CROSSORIGIN.sub("", INTEGRITY.sub("", tag))
    return tag.replace(f'"{url}"', '"' + os.path.relpath(target, here).replace(os.sep, "/") + '"')


def main() -> int:
    """Set-up entry point: fetch what is missing; exit 1 with the reason when it cannot."""
    try:
        fetched = fetch()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"Data Docs assets not fetched ({exc}); Data Docs will need the internet", file=sys.stderr)
        return 1
    where = cache_root()
    print(f"Data Docs assets: {'fetched ' + ', '.join(fetched) if fetched else 'already there'} ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
