"""Generate the conformance vectors in ``conformance_tests/vectors/`` (deterministic).

    python -m conformance_tests.make_vectors          # rewrite the vectors
    python -m conformance_tests.make_vectors --check  # exit 1 if the committed ones differ

Fixed seeds, fixed timestamps, tar/gzip metadata zeroed: running it twice gives
byte-identical files. Outputs:

* ``vectors/valid/...``   valid bundles (directory, ``.cbor`` and ``.tar.gz`` views)
* ``vectors/invalid/...`` one data file (or directory) per invalid case
* ``vectors/expected.json`` exact digests, signatures and contents of the valid ones
* ``vectors/cases.json``    every invalid case with its expected error code
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from protocol.bundle import Bundle, build_bundle, bundle_from_files
from protocol.checks import CHECK_BY_ID, CHECKS
from protocol.containers import cbor_encode, to_cbor, to_targz
from protocol.errors import ProtocolError
from protocol.limits import limits_from_mapping
from protocol.records import Record, make_record, make_tombstone, render_record
from protocol.rotation import make_key_record
from protocol.signature import b64, key_id, public_key_file, public_key_from_seed, sign_manifest
from protocol.verify import verify_bundle
from service.bundle_io import read_bundle

HERE = Path(__file__).resolve().parent
VECTORS = HERE / "vectors"
# a copy of ../shared/interop/original-v1, a real bundle made by the original implementation
ORIGINAL = HERE / "original-v1"

SEED_A = hashlib.sha256(b"whiteballoon conformance seed A").digest()
SEED_B = hashlib.sha256(b"whiteballoon conformance seed B").digest()
SEED_C = hashlib.sha256(b"whiteballoon conformance seed C").digest()
KEY_A = key_id(public_key_from_seed(SEED_A))
KEY_B = key_id(public_key_from_seed(SEED_B))
KEY_C = key_id(public_key_from_seed(SEED_C))
INSTANCE_A = "https://a.example.org"
T0 = "2026-01-02T03:04:05Z"
SIGNED_AT = "2026-01-02T03:04:06+00:00"

Files = dict[str, bytes]


# --------------------------------------------------------------------------- records


def rec(entity: str, fields: dict[str, str | int | None], body: str = "") -> Record:
    base: dict[str, str | int | None] = {
        "Origin": KEY_A,
        "Instance": INSTANCE_A,
        "Revision": 1,
        "Updated-At": T0,
    }
    base.update(fields)
    return make_record(entity, base, body)


def records_a() -> list[Record]:
    return [
        rec(
            "user",
            {
                "ID": "01J0USERALICE",
                "Username": "alice",
                "Display-Name": "Alice A.",
                "Created-At": T0,
            },
            "I garden and fix bikes.\n",
        ),
        rec(
            "user",
            {
                "ID": "01J0USERBOB",
                "Username": "bob",
                "Invited-By": f"{KEY_A}/01J0USERALICE",
                "Created-At": T0,
                "Contact-Email": "bob@example.org",
            },
        ),
        rec(
            "request",
            {
                "ID": "01J0REQ1",
                "Title": "Need a ride to the clinic on Tuesday",
                "Status": "open",
                "Created-By": f"{KEY_A}/01J0USERALICE",
                "Created-At": T0,
            },
            "Around 10am, back by noon.\n",
        ),
        rec(
            "comment",
            {
                "ID": "01J0COM1",
                "Request": f"{KEY_A}/01J0REQ1",
                "Created-By": f"{KEY_A}/01J0USERBOB",
                "Created-At": T0,
            },
            "I can drive you.\n",
        ),
        # a comment by a member of node A on a request that lives on node B
        rec(
            "comment",
            {
                "ID": "01J0COM2",
                "Request": f"{KEY_B}/01J0REQB",
                "Created-By": f"{KEY_A}/01J0USERALICE",
                "Created-At": T0,
            },
            "I have a spare pump, happy to lend it.\n",
        ),
        rec(
            "vouch",
            {
                "ID": "01J0VOUCH1",
                "Inviter": f"{KEY_A}/01J0USERALICE",
                "Invitee": f"{KEY_A}/01J0USERBOB",
                "Created-At": T0,
            },
        ),
    ]


def build(
    records: list[Record],
    *,
    seed: bytes = SEED_A,
    origin: str = KEY_A,
    sequence: int = 1,
    previous: str | None = None,
    kind: str = "snapshot",
) -> Bundle:
    return build_bundle(
        records,
        seed=seed,
        origin=origin,
        instance=INSTANCE_A,
        sequence=sequence,
        previous=previous,
        kind=kind,
        created_at=T0,
        signed_at=SIGNED_AT,
    )


def manifest_v2(
    entries: list[tuple[str, str]],
    *,
    origin: str = KEY_A,
    version: str = "2",
    sequence: int = 1,
    previous: str = "none",
    kind: str = "snapshot",
) -> bytes:
    head = (
        f"Manifest-Version: {version}\nOrigin: {origin}\nInstance: {INSTANCE_A}\n"
        f"Sequence: {sequence}\nPrevious: {previous}\nCreated-At: {T0}\nKind: {kind}\n\n"
    )
    return (head + "".join(f"{d}  {p}\n" for p, d in entries)).encode()


def signed(
    files: Files,
    *,
    seed: bytes = SEED_A,
    origin: str = KEY_A,
    entries: list[tuple[str, str]] | None = None,
    manifest: bytes | None = None,
) -> Files:
    """Directory view of ``files`` with a manifest listing them and a valid signature."""
    if manifest is None:
        if entries is None:
            entries = sorted((p, hashlib.sha256(d).hexdigest()) for p, d in files.items())
        manifest = manifest_v2(entries, origin=origin)
    public = public_key_from_seed(seed)
    out = {
        "manifest.sync.txt": manifest,
        "bundle.sig": sign_manifest(manifest, seed, SIGNED_AT),
        f"public_keys/{key_id(public)}.pub": public_key_file(public),
    }
    out.update(files)
    return dict(sorted(out.items()))


def base_files() -> Files:
    return build(records_a()).to_files()


def record_files() -> Files:
    return {
        p: d
        for p, d in base_files().items()
        if p.endswith(".sync.txt") and p != "manifest.sync.txt"
    }


def with_record(path: str, data: bytes) -> Files:
    files = record_files()
    files[path] = data
    return signed(files)


def replace_line(data: bytes, old: str, new: str) -> bytes:
    text = data.decode()
    assert old in text, old
    return text.replace(old, new, 1).encode()


def sig_with(files: Files, old: str, new: str) -> Files:
    out = dict(files)
    out["bundle.sig"] = replace_line(files["bundle.sig"], old, new)
    return out


# --------------------------------------------------------------------------- raw containers


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def reg(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def tar_of(files: Files, extra: list[tuple[tarfile.TarInfo, bytes | None]] | None = None) -> bytes:
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [(reg(p), d) for p, d in files.items()]
    return tar_gz(members + (extra or []))


def envelope(files: Files) -> dict[str, object]:
    b = bundle_from_files(files)
    return {
        "v": 2,
        "manifest": b.manifest,
        "sig": b.sig,
        "files": dict(b.files),
        "keys": dict(b.keys),
    }


def cbor_with(**changes: object) -> bytes:
    env = envelope(base_files())
    env.update(changes)
    return cbor_encode(env)  # type: ignore[arg-type]


def text_key(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 24
    return bytes([0x60 | len(raw)]) + raw


# --------------------------------------------------------------------------- cases


Case = tuple[str, str, str, Callable[[], Files | bytes]] | tuple[
    str, str, str, Callable[[], Files | bytes], dict[str, int]]


def invalid_cases() -> list[Case]:
    """(name, container, expected code, builder[, limits]). container: dir | cbor | targz.
    ``limits``: the verifier limits the case is judged under (default: the defaults)."""
    base = base_files
    req = "requests/01J0REQ1.sync.txt"
    user = "users/01J0USERALICE.sync.txt"

    def tampered_record() -> Files:
        files = base()
        files[req] = files[req].replace(b"10am", b"11am")
        return files

    def forged_digest() -> Files:
        files = base()
        files["manifest.sync.txt"] = files["manifest.sync.txt"].replace(
            b"Kind: snapshot", b"Kind: delta"
        )
        digest = hashlib.sha256(files["manifest.sync.txt"]).hexdigest()
        sig = files["bundle.sig"].decode().split("\n")
        sig[3] = f"Manifest-Digest: {digest}"
        files["bundle.sig"] = "\n".join(sig).encode()
        return files

    def extra_unlisted() -> Files:
        files = base()
        files["users/01J0INTRUDER.sync.txt"] = render_record(
            rec("user", {"ID": "01J0INTRUDER", "Username": "mallory"})
        )
        return files

    def other_key_signature() -> Files:
        # signature made by key B, headers claim key A
        files = base()
        forged = sign_manifest(files["manifest.sync.txt"], SEED_B, SIGNED_AT).decode()
        good = files["bundle.sig"].decode().split("\n")
        good[5] = forged.split("\n")[5]
        files["bundle.sig"] = "\n".join(good).encode()
        return files

    def signature_bit_flip() -> Files:
        files = base()
        lines = files["bundle.sig"].decode().split("\n")
        raw = bytearray(__import__("base64").b64decode(lines[5].split(": ")[1]))
        raw[10] ^= 0x01
        lines[5] = f"Signature: {b64(bytes(raw))}"
        files["bundle.sig"] = "\n".join(lines).encode()
        return files

    def drop_sig_line(prefix: str) -> Callable[[], Files]:
        def make() -> Files:
            files = base()
            lines = files["bundle.sig"].decode().split("\n")
            files["bundle.sig"] = "\n".join(
                ln for ln in lines if not ln.startswith(prefix)
            ).encode()
            return files

        return make

    def sig_line(prefix: str, new: str) -> Callable[[], Files]:
        def make() -> Files:
            files = base()
            lines = files["bundle.sig"].decode().split("\n")
            lines = [new if ln.startswith(prefix) else ln for ln in lines]
            files["bundle.sig"] = "\n".join(lines).encode()
            return files

        return make

    def without(path: str) -> Callable[[], Files]:
        def make() -> Files:
            files = base()
            del files[path]
            return files

        return make

    def record_bytes(data: bytes, path: str = req) -> Callable[[], Files]:
        return lambda: with_record(path, data)

    good_req = record_files()[req]
    good_user = record_files()[user]

    def untrusted_signer() -> Files:
        # manifest and records claim origin A, signed (validly) by key B
        return signed(record_files(), seed=SEED_B, origin=KEY_A)

    def manifest_origin_not_signer() -> Files:
        other = [
            rec(r.entity, {**dict(r.headers), "Origin": KEY_C}, r.body)
            for r in records_a()
            if r.entity != "comment"
        ]
        files = {r.path: render_record(r) for r in other}
        return signed(files, seed=SEED_A, origin=KEY_C)

    def record_origin_not_signer() -> Files:
        alien = rec("user", {"ID": "01J0ALIEN", "Username": "alien", "Origin": KEY_B})
        files = record_files()
        files[alien.path] = render_record(alien)
        return signed(files)

    def manifest_lines(lines: list[tuple[str, str]]) -> Files:
        files = record_files()
        return signed(files, manifest=manifest_v2(lines))

    def sorted_entries() -> list[tuple[str, str]]:
        return sorted((p, hashlib.sha256(d).hexdigest()) for p, d in record_files().items())

    def manifest_duplicate() -> Files:
        entries = sorted_entries()
        return manifest_lines(entries[:1] + entries)

    def manifest_unsorted() -> Files:
        return manifest_lines(list(reversed(sorted_entries())))

    def manifest_version_3() -> Files:
        return signed(record_files(), manifest=manifest_v2(sorted_entries(), version="3"))

    def tampered_pub() -> Files:
        files = base()
        other = public_key_from_seed(SEED_B)
        files[f"public_keys/{KEY_A}.pub"] = f"Key-ID: {KEY_A}\nPublic-Key: {b64(other)}\n".encode()
        return files

    def rotation_to_b() -> Record:
        """Key A's first rotation record, to key B (the key vectors' common record)."""
        return make_key_record(origin=KEY_A, instance=INSTANCE_A,
                               new_public_key=public_key_from_seed(SEED_B),
                               previous_key_id=KEY_A, revision=1, updated_at=T0)

    def bad_key_record() -> Files:
        kr = rotation_to_b()
        data = replace_line(
            render_record(kr),
            f"Public-Key: {b64(public_key_from_seed(SEED_B))}",
            f"Public-Key: {b64(public_key_from_seed(SEED_C))}",
        )
        return with_record(kr.path, data)

    def invalid_path_file() -> Files:
        files = base()
        files["notes/readme.txt"] = b"hello\n"
        return files

    def tombstone_with_body() -> Files:
        t = make_tombstone(
            "request", "01J0REQ1", origin=KEY_A, instance=INSTANCE_A, revision=2, updated_at=T0
        )
        return with_record(t.path, render_record(t) + b"leftover text\n")

    def private_record() -> Files:
        return with_record(
            user, replace_line(good_user, "Sync-Scope: public", "Sync-Scope: private")
        )

    def invite_in_v2() -> Files:
        inv = rec("invite", {"ID": "01J0INVITE", "Created-By": f"{KEY_A}/01J0USERALICE"})
        return with_record(inv.path, render_record(inv))

    def schema1_in_v2() -> Files:
        # a schema-2 record in every other respect: only Schema-Version is 1
        return with_record(req, replace_line(good_req, "Schema-Version: 2", "Schema-Version: 1"))

    def wrong_dir() -> Files:
        files = record_files()
        files["users/01J0REQ1.sync.txt"] = files.pop(req)
        return signed(files)

    def bad_id() -> Files:
        return with_record(req, replace_line(good_req, "ID: 01J0REQ1", "ID: -01J0REQ1"))

    def cbor_files(files_map: dict[str, bytes]) -> bytes:
        return cbor_with(files=files_map)

    base_cbor = lambda: to_cbor(bundle_from_files(base()))  # noqa: E731

    def cbor_duplicate_key() -> bytes:
        # {"v": 2, ..., "keys": {...}, "v": 2}: same key twice at the top level
        good = base_cbor()
        assert good[0] == 0xA5
        return bytes([0xA6]) + good[1:] + text_key("v") + b"\x02"

    def cbor_indefinite() -> bytes:
        good = base_cbor()
        return b"\xbf" + good[1:] + b"\xff"

    def cbor_too_many_files() -> bytes:
        # the valid envelope, with "files" moved last (any key order is accepted) and
        # declaring 50,001 entries (more than max_files): the decoder must refuse at the
        # declaration, before reading (or needing) a single entry
        env = envelope(base_files())
        head = b""
        for key in ("v", "sig", "keys", "manifest"):
            head += cbor_encode(key) + cbor_encode(env[key])  # type: ignore[arg-type]
        return b"\xa5" + head + text_key("files") + b"\xb9\xc3\x51"

    def bomb() -> bytes:
        # the valid bundle's tar followed by 4 MiB of zero blocks (which tar readers skip):
        # only the compression ratio is wrong
        raw = gzip.decompress(to_targz(bundle_from_files(base())))
        return gzip.compress(raw + bytes(4 * 1024 * 1024), compresslevel=9, mtime=0)

    def oversized_record() -> bytes:
        big = rec(
            "request",
            {
                "ID": "01J0BIG",
                "Title": "big",
                "Status": "open",
                "Created-By": f"{KEY_A}/01J0USERALICE",
            },
            "x" * 300_000 + "\n",
        )
        files = record_files()
        files[big.path] = render_record(big)
        return tar_of(signed(files))

    def symlink() -> bytes:
        info = tarfile.TarInfo("users/01J0LINK.sync.txt")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        return tar_of(base(), [(info, None)])

    def hardlink() -> bytes:
        info = tarfile.TarInfo("users/01J0LINK.sync.txt")
        info.type, info.linkname = tarfile.LNKTYPE, "bundle.sig"
        return tar_of(base(), [(info, None)])

    def chardev() -> bytes:
        info = tarfile.TarInfo("users/01J0DEV.sync.txt")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        return tar_of(base(), [(info, None)])

    def tar_duplicate() -> bytes:
        return tar_of(base(), [(reg(req), good_req.replace(b"10am", b"11am"))])

    def tar_named(name: str) -> Callable[[], bytes]:
        return lambda: tar_of(base(), [(reg(name), b"x\n")])

    def changed_digest() -> Files:
        # Manifest-Digest is not covered by the signature: only this line is wrong
        return sig_line("Manifest-Digest:", "Manifest-Digest: " + "0" * 64)()

    def noncanonical(name: str) -> Callable[[], Files]:
        # same bytes, but the unused low bits of the last base64 digit are set
        def make() -> Files:
            files = base()
            lines = files["bundle.sig"].decode().split("\n")
            i = next(n for n, ln in enumerate(lines) if ln.startswith(name + ": "))
            value = lines[i].split(": ", 1)[1]
            data = value.rstrip("=")
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            last = alphabet[alphabet.index(data[-1]) | 1]
            lines[i] = f"{name}: {data[:-1]}{last}{value[len(data) :]}"
            files["bundle.sig"] = "\n".join(lines).encode()
            return files

        return make

    def sig_append(line: str) -> Callable[[], Files]:
        def make() -> Files:
            files = base()
            files["bundle.sig"] = files["bundle.sig"] + line.encode() + b"\n"
            return files

        return make

    def sig_text(change: Callable[[bytes], bytes]) -> Callable[[], Files]:
        def make() -> Files:
            files = base()
            files["bundle.sig"] = change(files["bundle.sig"])
            return files

        return make

    def swap_sig_lines(files_sig: bytes) -> bytes:
        lines = files_sig.decode().split("\n")
        lines[3], lines[4] = lines[4], lines[3]
        return "\n".join(lines).encode()

    def manifest_raw(change: Callable[[bytes], bytes]) -> Callable[[], Files]:
        def make() -> Files:
            return signed(record_files(), manifest=change(manifest_v2(sorted_entries())))

        return make

    def manifest_extra_line(line: str) -> Callable[[], Files]:
        return manifest_raw(lambda m: m + line.encode() + b"\n")

    def manifest_nonadjacent_duplicate() -> Files:
        entries = sorted_entries()
        return manifest_lines(entries + entries[:1])

    def entity_not_first() -> Files:
        return with_record(
            req,
            replace_line(
                good_req, "Entity: request\nID: 01J0REQ1", "ID: 01J0REQ1\nEntity: request"
            ),
        )

    def key_file(data: bytes) -> Callable[[], Files]:
        def make() -> Files:
            files = base()
            files[f"public_keys/{KEY_A}.pub"] = data
            return files

        return make

    def cbor_key_name() -> bytes:
        env = envelope(base_files())
        env["keys"] = {**env["keys"], "NOT-A-KEY-ID": public_key_file(public_key_from_seed(SEED_B))}  # type: ignore[dict-item]
        return cbor_encode(env)  # type: ignore[arg-type]

    def cbor_tagged_manifest() -> bytes:
        good = base_cbor()
        manifest = base()["manifest.sync.txt"]
        key = text_key("manifest")
        head = cbor_encode(manifest)
        at = good.index(key + head)
        return good[: at + len(key)] + b"\xd8\x18" + good[at + len(key) :]

    def tombstone_private() -> Files:
        t = make_tombstone(
            "request", "01J0REQ1", origin=KEY_A, instance=INSTANCE_A, revision=2, updated_at=T0
        )
        return with_record(
            t.path, replace_line(render_record(t), "Sync-Scope: public", "Sync-Scope: private")
        )

    def vouch_with_body() -> Files:
        path = "vouchs/01J0VOUCH1.sync.txt"
        return with_record(path, record_files()[path] + b"I vouch for bob.\n")

    def v1_files(
        change: Callable[[bytes], bytes] = lambda d: d,
        request_path: str = "requests/request_1.sync.txt",
    ) -> Files:
        files = {
            "users/user_1.sync.txt": (ORIGINAL / "users/user_1.sync.txt").read_bytes(),
            request_path: change((ORIGINAL / "requests/request_1.sync.txt").read_bytes()),
        }
        entries = sorted((p, hashlib.sha256(d).hexdigest()) for p, d in files.items())
        manifest = "".join(f"{d}  {p}\n" for p, d in entries).encode()
        return signed(files, manifest=manifest)

    def v1_invalid_user_id() -> Files:
        # schema-1 user "-1" (not an ID: it starts with "-") at its schema-1 path
        files = v1_files()
        user = files.pop("users/user_1.sync.txt")
        files["users/user_-1.sync.txt"] = replace_line(user, "ID: 1\n", "ID: -1\n")
        files = {p: d for p, d in files.items() if p.endswith(".sync.txt")
                 and p != "manifest.sync.txt"}
        entries = sorted((p, hashlib.sha256(d).hexdigest()) for p, d in files.items())
        return signed(files, manifest="".join(f"{d}  {p}\n" for p, d in entries).encode())

    def short_key() -> Files:
        # the bundle of origin key_id(short), whose bundle.sig names that key and its
        # (correct) Key-ID: nothing but the key's length is wrong, so it cannot verify
        short = bytes(range(31))
        kid = key_id(short)
        files = {
            r.path: render_record(r)
            for r in (rec(r.entity, {**dict(r.headers), "Origin": kid}, r.body)
                      for r in records_a())
        }
        files = signed(files, origin=kid)
        files = sig_with(files, f"Public-Key: {b64(public_key_from_seed(SEED_A))}",
                         f"Public-Key: {b64(short)}")
        return sig_with(files, f"Key-ID: {KEY_A}", f"Key-ID: {kid}")

    def short_signature() -> Files:
        files = base()
        lines = files["bundle.sig"].decode().split("\n")
        raw = __import__("base64").b64decode(lines[5].split(": ")[1])
        lines[5] = f"Signature: {b64(raw[:63])}"
        files["bundle.sig"] = "\n".join(lines).encode()
        return files

    def base_targz() -> bytes:
        return to_targz(bundle_from_files(base()))

    def tar_with_directories() -> bytes:
        files = bundle_from_files(base()).to_files()
        entries: list[tuple[tarfile.TarInfo, bytes | None]] = [(_dir("./"), None)] * 1001
        return tar_gz(entries + [(reg(p), d) for p, d in files.items()])

    def empty_targz() -> bytes:
        return to_targz(build([], seed=SEED_C, origin=KEY_C))

    def not_a_tar() -> bytes:
        # a complete gzip stream whose content is not a tar archive
        return gzip.compress(b"manifest.sync.txt is not a tar header\n" * 20, mtime=0)

    def cbor_array() -> bytes:
        # the envelope's five values in an array: not a map, so not a CBOR envelope
        env = envelope(base_files())
        items = b"".join(cbor_encode(env[k]) for k in ("v", "manifest", "sig", "files", "keys"))  # type: ignore[arg-type]
        return b"\x85" + items

    def cbor_missing_keys() -> bytes:
        env = envelope(base_files())
        del env["keys"]
        return cbor_encode(env)  # type: ignore[arg-type]

    def key_record_with_body() -> Files:
        kr = rotation_to_b()
        return with_record(kr.path, render_record(kr) + b"new key from Tuesday\n")

    def v1_invite(old: str, new: str) -> Callable[[], Files]:
        def make() -> Files:
            files = v1_files()
            path = "invites/invite_81b672.sync.txt"
            files[path] = replace_line((ORIGINAL / path).read_bytes(), old, new)
            files = {p: d for p, d in files.items()
                     if p.endswith(".sync.txt") and p != "manifest.sync.txt"}
            entries = sorted((p, hashlib.sha256(d).hexdigest()) for p, d in files.items())
            return signed(files, manifest="".join(f"{d}  {p}\n" for p, d in entries).encode())

        return make

    def tombstone_with_title() -> Files:
        t = make_tombstone(
            "request", "01J0REQ1", origin=KEY_A, instance=INSTANCE_A, revision=2, updated_at=T0
        )
        return with_record(t.path, replace_line(
            render_record(t), "Deleted: true\n", "Deleted: true\nTitle: gone\n"))

    def v1_change(old: str, new: str) -> Callable[[], Files]:
        return lambda: v1_files(lambda d: replace_line(d, old, new))

    def v1_duplicate_comment() -> Files:
        def change(d: bytes) -> bytes:
            text = d.decode()
            first = text[text.index("---\nComment-ID: 1") : text.index("---\nComment-ID: 2")]
            return (text + "\n" + first).encode()

        return v1_files(change)

    def ts(header: str, value: str, path: str = req) -> Callable[[], Files]:
        data = record_files()[path]
        old = next(ln for ln in data.decode().split("\n") if ln.startswith(header + ": "))
        return lambda: with_record(path, replace_line(data, old, f"{header}: {value}"))

    return [
        # signature and manifest integrity
        ("tampered_record", "dir", "digest_mismatch", tampered_record),
        ("manifest_digest_changed", "dir", "manifest_digest_mismatch", changed_digest),
        ("tampered_manifest_forged_digest", "dir", "bad_signature", forged_digest),
        ("extra_unlisted_file", "dir", "unlisted_file", extra_unlisted),
        ("signature_by_other_key", "dir", "bad_signature", other_key_signature),
        ("signature_bit_flip", "dir", "bad_signature", signature_bit_flip),
        ("noncanonical_base64_signature", "dir", "bad_base64", noncanonical("Signature")),
        ("noncanonical_base64_public_key", "dir", "bad_base64", noncanonical("Public-Key")),
        (
            # a 31-byte key with its own (correct) Key-ID: it cannot verify (sig.ed25519)
            "short_public_key",
            "dir",
            "bad_signature",
            short_key,
        ),
        ("short_signature", "dir", "bad_signature", short_signature),
        ("missing_signed_at", "dir", "missing_signature_header", drop_sig_line("Signed-At:")),
        ("missing_key_id", "dir", "missing_signature_header", drop_sig_line("Key-ID:")),
        (
            "unknown_signature_version",
            "dir",
            "unsupported_signature_version",
            sig_line("Signature-Version:", "Signature-Version: 2"),
        ),
        (
            "key_id_not_public_key",
            "dir",
            "key_id_mismatch",
            sig_line("Key-ID:", f"Key-ID: {KEY_B}"),
        ),
        (
            "unknown_signature_header",
            "dir",
            "malformed_signature",
            sig_append("Signed-By: someone"),
        ),
        ("missing_signature_file", "dir", "missing_signature", without("bundle.sig")),
        ("missing_manifest", "dir", "missing_manifest", without("manifest.sync.txt")),
        ("tampered_public_key_file", "dir", "key_id_mismatch", tampered_pub),
        # trust and origin
        ("untrusted_signer", "dir", "untrusted_key", untrusted_signer),
        ("manifest_origin_not_signer", "dir", "untrusted_key", manifest_origin_not_signer),
        ("record_origin_not_signer", "dir", "origin_mismatch", record_origin_not_signer),
        # manifest grammar
        ("manifest_duplicate_path", "dir", "duplicate_path", manifest_duplicate),
        ("manifest_unsorted", "dir", "malformed_manifest", manifest_unsorted),
        ("manifest_unknown_version", "dir", "unsupported_manifest_version", manifest_version_3),
        # records
        (
            "non_utf8_record",
            "dir",
            "not_utf8",
            record_bytes(good_req.replace(b"Around", b"Ar\xffund")),
        ),
        (
            "nul_byte_record",
            "dir",
            "nul_byte",
            record_bytes(good_req.replace(b"Around", b"Ar\x00und")),
        ),
        ("crlf_record", "dir", "bad_line_ending", record_bytes(good_req.replace(b"\n", b"\r\n"))),
        (
            "newline_injected_header",
            "dir",
            "duplicate_header",
            record_bytes(
                replace_line(
                    good_req,
                    "Title: Need a ride to the clinic on Tuesday",
                    "Title: Need a ride to the clinic on Tuesday\nTitle: Free money",
                )
            ),
        ),
        (
            "header_out_of_order",
            "dir",
            "header_order",
            record_bytes(
                replace_line(
                    good_req, f"ID: 01J0REQ1\nOrigin: {KEY_A}", f"Origin: {KEY_A}\nID: 01J0REQ1"
                )
            ),
        ),
        (
            "unknown_header",
            "dir",
            "unknown_header",
            record_bytes(
                replace_line(good_user, "Username: alice", "Username: alice\nPassword: hunter2"),
                user,
            ),
        ),
        (
            "missing_revision",
            "dir",
            "missing_header",
            record_bytes(replace_line(good_req, "Revision: 1\n", "")),
        ),
        (
            "empty_header_value",
            "dir",
            "invalid_header_value",
            record_bytes(replace_line(good_req, "Status: open", "Status: ")),
        ),
        (
            "no_blank_line",
            "dir",
            "malformed_record",
            record_bytes(good_req.replace(b"\n\n", b"\n")),
        ),
        (
            "header_too_large",
            "dir",
            "header_too_large",
            record_bytes(
                replace_line(
                    good_req, "Title: Need a ride to the clinic on Tuesday", "Title: " + "x" * 17000
                )
            ),
        ),
        (
            "unknown_entity",
            "dir",
            "unknown_entity",
            record_bytes(
                replace_line(good_user, "Entity: user", "Entity: widget"),
                "widgets/01J0USERALICE.sync.txt",
            ),
        ),
        (
            "unknown_schema",
            "dir",
            "unsupported_schema",
            record_bytes(replace_line(good_req, "Schema-Version: 2", "Schema-Version: 3")),
        ),
        ("schema1_version_in_v2_bundle", "dir", "schema_mismatch", schema1_in_v2),
        ("record_in_wrong_directory", "dir", "path_mismatch", wrong_dir),
        ("invalid_id", "dir", "invalid_id", bad_id),
        ("private_record", "dir", "not_public", private_record),
        ("invite_in_v2_bundle", "dir", "entity_not_allowed", invite_in_v2),
        ("tombstone_with_body", "dir", "malformed_record", tombstone_with_body),
        ("key_record_mismatch", "dir", "invalid_key_record", bad_key_record),
        ("invalid_path", "dir", "invalid_path", invalid_path_file),
        # tar.gz
        ("tar_path_traversal", "targz", "unsafe_path", tar_named("../evil.sync.txt")),
        ("tar_absolute_path", "targz", "unsafe_path", tar_named("/etc/evil.sync.txt")),
        ("tar_symlink", "targz", "unsafe_archive_member", symlink),
        ("tar_hardlink", "targz", "unsafe_archive_member", hardlink),
        ("tar_char_device", "targz", "unsafe_archive_member", chardev),
        ("tar_duplicate_name", "targz", "duplicate_path", tar_duplicate),
        ("tar_gzip_bomb", "targz", "bundle_too_large", bomb),
        ("tar_oversized_record", "targz", "record_too_large", oversized_record),
        (
            "tar_truncated",
            "targz",
            "malformed_archive",
            lambda: to_targz(bundle_from_files(base()))[:-40],
        ),
        ("tar_not_gzip", "targz", "malformed_archive", lambda: b"\x1f\x8bnot really gzip"),
        # CBOR
        ("cbor_truncated", "cbor", "malformed_cbor", lambda: base_cbor()[:-7]),
        ("cbor_trailing_bytes", "cbor", "trailing_bytes", lambda: base_cbor() + b"\x00"),
        (
            "cbor_extra_top_level_key",
            "cbor",
            "unknown_field",
            lambda: cbor_with(comment="not allowed"),
        ),
        ("cbor_duplicate_key", "cbor", "duplicate_key", cbor_duplicate_key),
        (
            "cbor_wrong_type",
            "cbor",
            "wrong_type",
            lambda: cbor_with(manifest=base()["manifest.sync.txt"].decode()),
        ),
        ("cbor_unknown_version", "cbor", "unsupported_container_version", lambda: cbor_with(v=3)),
        ("cbor_indefinite_length", "cbor", "malformed_cbor", cbor_indefinite),
        (
            "cbor_path_traversal",
            "cbor",
            "unsafe_path",
            lambda: cbor_files({**record_files(), "../../etc/passwd.sync.txt": b"x"}),
        ),
        (
            "cbor_absolute_path",
            "cbor",
            "unsafe_path",
            lambda: cbor_files({**record_files(), "/etc/passwd.sync.txt": b"x"}),
        ),
        ("cbor_too_many_files", "cbor", "too_many_files", cbor_too_many_files),
        # -- second wave: one vector per gap of the spec (issue 19), each one problem
        ("signature_reordered", "dir", "malformed_signature", sig_text(swap_sig_lines)),
        ("signature_no_final_lf", "dir", "malformed_signature", sig_text(lambda b: b[:-1])),
        ("signature_bad_line", "dir", "malformed_signature", sig_append("not a header")),
        (
            "signature_duplicate_header",
            "dir",
            "malformed_signature",
            sig_append(f"Signed-At: {SIGNED_AT}"),
        ),
        (
            "signature_key_id_uppercase",
            "dir",
            "key_id_mismatch",
            sig_line("Key-ID:", f"Key-ID: {KEY_A.upper()}"),
        ),
        (
            "signature_signed_at_feb_30",
            "dir",
            "malformed_signature",
            sig_line("Signed-At:", "Signed-At: 2026-02-30T03:04:06+00:00"),
        ),
        (
            # a perfectly good bundle.sig, over a lowered max_signature_bytes
            "signature_oversized",
            "dir",
            "record_too_large",
            base,
            {"max_signature_bytes": 256},
        ),
        ("key_file_malformed", "dir", "malformed_key_file", key_file(b"Key-ID: nope\n")),
        ("key_file_oversized", "dir", "record_too_large", base, {"max_key_file_bytes": 64}),
        (
            "manifest_crlf",
            "dir",
            "bad_line_ending",
            manifest_raw(lambda m: m.replace(b"\n", b"\r\n")),
        ),
        ("manifest_no_final_lf", "dir", "malformed_manifest", manifest_raw(lambda m: m[:-1])),
        (
            "manifest_duplicate_path_nonadjacent",
            "dir",
            "duplicate_path",
            manifest_nonadjacent_duplicate,
        ),
        (
            "manifest_unsafe_path",
            "dir",
            "unsafe_path",
            manifest_extra_line("0" * 64 + "  zzz/../evil.sync.txt"),
        ),
        (
            "manifest_not_a_record_path",
            "dir",
            "invalid_path",
            manifest_extra_line("0" * 64 + "  zzz/readme.txt"),
        ),
        ("manifest_bad_line", "dir", "malformed_manifest", manifest_extra_line("0" * 64 + " zzz")),
        (
            "manifest_created_at_feb_30",
            "dir",
            "malformed_manifest",
            manifest_raw(lambda m: m.replace(T0.encode(), b"2026-02-30T03:04:05Z", 1)),
        ),
        (
            "manifest_instance_not_url",
            "dir",
            "malformed_manifest",
            manifest_raw(lambda m: m.replace(INSTANCE_A.encode(), b"a.example.org", 1)),
        ),
        (
            "manifest_headers_reordered",
            "dir",
            "malformed_manifest",
            manifest_raw(
                lambda m: m.replace(b"Kind: snapshot\n", b"").replace(
                    b"Created-At:", b"Kind: snapshot\nCreated-At:"
                )
            ),
        ),
        ("entity_not_first", "dir", "header_order", entity_not_first),
        (
            "header_name_grammar",
            "dir",
            "malformed_record",
            record_bytes(replace_line(good_req, "Created-At:", "created-at:")),
        ),
        (
            "header_name_without_value",
            "dir",
            "invalid_header_value",
            record_bytes(replace_line(good_user, "Display-Name: Alice A.", "Display-Name:"), user),
        ),
        (
            "header_control_u0085",
            "dir",
            "invalid_header_value",
            record_bytes(replace_line(good_req, "Title: Need a ride", "Title: Need\u0085a ride")),
        ),
        (
            "header_trailing_no_break_space",
            "dir",
            "invalid_header_value",
            record_bytes(replace_line(good_req, "on Tuesday", "on Tuesday\u00a0")),
        ),
        (
            "tags_bad_syntax",
            "dir",
            "invalid_header_value",
            record_bytes(
                replace_line(good_req, "\n\n", "\nTags: Food,Transport\n\n")
            ),
        ),
        (
            "timestamp_feb_30",
            "dir",
            "invalid_header_value",
            ts("Created-At", "2026-02-30T03:04:05Z"),
        ),
        (
            "timestamp_second_60",
            "dir",
            "invalid_header_value",
            ts("Created-At", "2026-01-02T03:04:60Z"),
        ),
        (
            "timestamp_feb_29_1900",
            "dir",
            "invalid_header_value",
            ts("Created-At", "1900-02-29T00:00:00Z"),
        ),
        (
            "timestamp_offset",
            "dir",
            "invalid_header_value",
            ts("Created-At", "2026-01-02T03:04:05+00:00"),
        ),
        (
            "instance_javascript_url",
            "dir",
            "invalid_instance",
            ts("Instance", "javascript:alert(1)"),
        ),
        ("instance_bare_name", "dir", "invalid_instance", ts("Instance", "a.example.org")),
        ("tombstone_private", "dir", "not_public", tombstone_private),
        ("vouch_with_body", "dir", "malformed_record", vouch_with_body),
        ("cbor_tagged_manifest", "cbor", "malformed_cbor", cbor_tagged_manifest),
        (
            "signature_nul_byte",
            "dir",
            "malformed_signature",
            sig_text(lambda b: b.replace(b"Signed-At: ", b"Signed-At: \x00")),
        ),
        (
            "signature_digest_uppercase",
            "dir",
            "malformed_signature",
            sig_text(
                lambda b: b.replace(
                    b"Manifest-Digest: "
                    + bytes(hashlib.sha256(base()["manifest.sync.txt"]).hexdigest(), "ascii"),
                    b"Manifest-Digest: "
                    + bytes(
                        hashlib.sha256(base()["manifest.sync.txt"]).hexdigest().upper(), "ascii"
                    ),
                )
            ),
        ),
        (
            "manifest_not_utf8",
            "dir",
            "not_utf8",
            manifest_raw(lambda m: m.replace(b"Kind: snapshot", b"Kind: snapshot\xff")),
        ),
        (
            "manifest_nul_byte",
            "dir",
            "nul_byte",
            manifest_raw(lambda m: m.replace(b"Kind: snapshot", b"Kind: snapshot\x00")),
        ),
        (
            "record_without_entity",
            "dir",
            "missing_header",
            record_bytes(replace_line(good_req, "Entity: request\n", "")),
        ),
        ("cbor_version_text", "cbor", "wrong_type", lambda: cbor_with(v="2")),
        ("cbor_key_file_name", "cbor", "invalid_path", cbor_key_name),
        (
            "schema1_status_capitalised",
            "dir",
            "invalid_header_value",
            v1_change("Status: open", "Status: Open"),
        ),
        (
            "schema1_instance_bare_name",
            "dir",
            "invalid_instance",
            v1_change("Instance: http://instance-a.example", "Instance: instance-a"),
        ),
        (
            "schema1_not_public",
            "dir",
            "not_public",
            v1_change("Sync-Scope: public\nTitle", "Sync-Scope: private\nTitle"),
        ),
        # schema 1: one vector per check (section 9)
        (
            "schema1_header_name_grammar",
            "dir",
            "malformed_record",
            v1_change("Contact-Email:", "contact-Email:"),
        ),
        (
            "schema1_duplicate_header",
            "dir",
            "duplicate_header",
            v1_change(
                "Contact-Email: aadmin@example.org",
                "Contact-Email: aadmin@example.org\nContact-Email: mallory@example.org",
            ),
        ),
        ("schema1_no_entity", "dir", "missing_header", v1_change("Entity: request\n", "")),
        (
            "schema1_unknown_entity",
            "dir",
            "unknown_entity",
            v1_change("Entity: request", "Entity: widget"),
        ),
        (
            "schema1_unknown_header",
            "dir",
            "unknown_header",
            v1_change("Created-By: 1", "Created-By: 1\nPassword: x"),
        ),
        (
            "schema1_no_instance",
            "dir",
            "missing_header",
            v1_change("Instance: http://instance-a.example\n", ""),
        ),
        (
            "schema1_version_2",
            "dir",
            "schema_mismatch",
            v1_change("Schema-Version: 1", "Schema-Version: 2"),
        ),
        (
            "schema1_version_3",
            "dir",
            "unsupported_schema",
            v1_change("Schema-Version: 1", "Schema-Version: 3"),
        ),
        (
            "schema1_wrong_path",
            "dir",
            "path_mismatch",
            lambda: v1_files(request_path="requests/request_9.sync.txt"),
        ),
        (
            "schema1_bad_time",
            "dir",
            "malformed_schema1",
            v1_change(
                "Updated-At: 2026-11-25T21:07:18.630112Z",
                "Updated-At: 2026-11-25T21:07:18.630112+0100",
            ),
        ),
        (
            "schema1_bad_comment_id",
            "dir",
            "malformed_schema1",
            v1_change("Comment-ID: 2", "Comment-ID: -2"),
        ),
        ("schema1_duplicate_comment", "dir", "duplicate_record", v1_duplicate_comment),
        ("schema1_invalid_id", "dir", "invalid_id", v1_invalid_user_id),
        # -- third wave: the checks that had no single-problem vector. A case may carry
        # verifier limits (cases.json "limits"), which a verifier MUST apply: a valid
        # bundle over a lowered limit has exactly one problem, in a few kilobytes.
        ("container_cbor_array", "cbor", "unknown_container", cbor_array),
        ("cbor_over_container_limit", "cbor", "bundle_too_large", base_cbor,
         {"max_container_bytes": 1024}),
        ("cbor_missing_keys", "cbor", "wrong_type", cbor_missing_keys),
        ("tar_over_container_limit", "targz", "bundle_too_large", base_targz,
         {"max_container_bytes": 1024}),
        ("tar_not_a_tar", "targz", "malformed_archive", not_a_tar),
        # 9 files within max_files 9, and 1001 directory entries: 1010 members > 9 + 1000
        ("tar_too_many_members", "targz", "too_many_files", tar_with_directories,
         {"max_files": 9}),
        # the largest member is bundle.sig: over max(max_record_bytes,
        # max_manifest_bytes), within max_signature_bytes
        ("tar_member_over_cap", "targz", "record_too_large", empty_targz,
         {"max_record_bytes": 256, "max_manifest_bytes": 256}),
        ("too_many_files", "dir", "too_many_files", base, {"max_files": 8}),
        ("bundle_over_limit", "dir", "bundle_too_large", base, {"max_bundle_bytes": 2048}),
        ("manifest_over_limit", "dir", "manifest_too_large", base,
         {"max_manifest_bytes": 256}),
        ("record_over_limit", "dir", "record_too_large", base, {"max_record_bytes": 256}),
        ("header_over_line_limit", "dir", "header_too_large", base, {"max_headers": 10}),
        ("header_over_byte_limit", "dir", "header_too_large", base, {"max_header_bytes": 256}),
        ("tar_over_archive_limit", "targz", "bundle_too_large", base_targz,
         {"max_archive_bytes": 4096}),
        ("tombstone_with_entity_header", "dir", "malformed_record", tombstone_with_title),
        # issue 19's remaining points, one vector each
        ("cbor_files_holds_manifest", "cbor", "invalid_path",
         lambda: cbor_files({**record_files(), "manifest.sync.txt": b"x\n"})),
        ("key_record_with_body", "dir", "malformed_record", key_record_with_body),
        ("schema1_invite_max_uses_word", "dir", "invalid_header_value",
         v1_invite("Max-Uses: 1", "Max-Uses: many")),
        (
            "request_without_status",
            "dir",
            "missing_header",
            record_bytes(replace_line(good_req, "Status: open\n", "")),
        ),
    ]


# --------------------------------------------------------------------------- valid bundles


def valid_bundles() -> list[tuple[str, Bundle, dict[str, list[str]], bytes | None]]:
    """(name, bundle, trusted keys per origin beyond the default, seed)."""
    first = build(records_a())
    # sequence 2: a delta with a tombstone and an edit; one listed file withheld by a relay
    edited = rec(
        "request",
        {
            "ID": "01J0REQ1",
            "Title": "Need a ride to the clinic on Tuesday",
            "Status": "completed",
            "Created-By": f"{KEY_A}/01J0USERALICE",
            "Created-At": T0,
            "Completed-At": "2026-01-03T12:00:00Z",
            "Revision": 2,
            "Updated-At": "2026-01-03T12:00:00Z",
        },
        "Around 10am, back by noon.\n",
    )
    gone = make_tombstone(
        "comment",
        "01J0COM2",
        origin=KEY_A,
        instance=INSTANCE_A,
        revision=2,
        updated_at="2026-01-03T12:00:00Z",
    )
    rotation = make_key_record(
        origin=KEY_A,
        instance=INSTANCE_A,
        new_public_key=public_key_from_seed(SEED_B),
        previous_key_id=KEY_A,
        revision=1,
        updated_at="2026-01-03T12:00:00Z",
        valid_from="2026-01-03T12:00:00Z",
    )
    second_full = build([edited, gone, rotation], sequence=2, previous=first.digest, kind="delta")
    second = Bundle(
        manifest=second_full.manifest,
        sig=second_full.sig,
        files={p: d for p, d in second_full.files.items() if not p.startswith("requests/")},
        keys=second_full.keys,
    )
    # sequence 3: signed by the rotated key B, still origin A
    third = build(
        [
            rec(
                "user",
                {
                    "ID": "01J0USERCAROL",
                    "Username": "carol",
                    "Revision": 1,
                    "Updated-At": "2026-01-04T00:00:00Z",
                },
            )
        ],
        seed=SEED_B,
        sequence=3,
        previous=second.digest,
        kind="delta",
    )
    empty = build([], seed=SEED_C, origin=KEY_C)
    # a request carrying the optional Tags header (#23), from a node of its own
    tagged = build(
        [
            rec(
                "request",
                {
                    "ID": "01J0REQTAGS",
                    "Origin": KEY_C,
                    "Instance": "https://c.example.org",
                    "Title": "Soup for a family of four",
                    "Status": "open",
                    "Created-By": f"{KEY_C}/01J0USERDORA",
                    "Created-At": T0,
                    "Tags": "food school-run",
                },
                "Any evening this week.\n",
            )
        ],
        seed=SEED_C,
        origin=KEY_C,
    )
    original_files = {
        p.relative_to(ORIGINAL).as_posix(): p.read_bytes()
        for p in sorted(ORIGINAL.rglob("*"))
        if p.is_file()
    }
    original = bundle_from_files(original_files)
    return [
        ("v2-snapshot", first, {}, SEED_A),
        ("v2-delta-withheld", second, {}, SEED_A),
        ("v2-rotated-key", third, {KEY_A: [KEY_B]}, SEED_B),
        ("v2-empty", empty, {}, SEED_C),
        ("v2-tags", tagged, {}, SEED_C),
        ("original-v1", original, {}, None),
    ]


# --------------------------------------------------------------------------- writing


def write_dir(files: Files, target: Path) -> None:
    for rel, data in files.items():
        dest = target.joinpath(*rel.split("/"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def generate(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "valid").mkdir(parents=True)
    (out / "invalid").mkdir()
    (out / ".gitattributes").write_text("* -text -diff\n")
    expected: dict[str, object] = {
        "about": "Valid bundles. Each is given as a directory, .cbor and .tar.gz; all three "
        "must verify with the same digest. trusted_keys lists keys to trust beyond "
        "the default (an origin's own first key).",
        "seeds": {"A": SEED_A.hex(), "B": SEED_B.hex(), "C": SEED_C.hex()},
        "cases": [],
    }
    cases_list = expected["cases"]
    assert isinstance(cases_list, list)
    for name, bundle, trusted, seed in valid_bundles():

        def trust_fn(o, k, t=trusted):
            return k == o or k in t.get(o, [])

        verified = verify_bundle(bundle, trust=trust_fn)
        write_dir(bundle.to_files(), out / "valid" / name)
        (out / "valid" / f"{name}.cbor").write_bytes(to_cbor(bundle))
        (out / "valid" / f"{name}.tar.gz").write_bytes(to_targz(bundle))
        paths = [f"valid/{name}", f"valid/{name}.cbor", f"valid/{name}.tar.gz"]
        if name == "v2-snapshot":
            # what operators' tools make: `tar czf x.tar.gz -C bundle .` (a "./" entry
            # and "./" prefixes), `tar czf x.tar.gz bundle/` (one top directory), and a
            # CBOR envelope under a tar.gz name (containers are detected by content)
            files = bundle.to_files()
            dot = [(_dir("./"), None)] + [(reg("./" + p), d) for p, d in files.items()]
            top = [(_dir("bundle/"), None)] + [(reg("bundle/" + p), d) for p, d in files.items()]
            for suffix, data in (
                ("-dot.tar.gz", tar_gz(dot)),
                ("-topdir.tar.gz", tar_gz(top)),
                ("-cbor.tgz", to_cbor(bundle)),
            ):
                (out / "valid" / f"{name}{suffix}").write_bytes(data)
                paths.append(f"valid/{name}{suffix}")
        sig_lines = dict(line.split(": ", 1) for line in bundle.sig.decode().splitlines())
        cases_list.append(
            {
                "name": name,
                "paths": paths,
                "seed": seed.hex() if seed else None,
                "digest": bundle.digest,
                "signature": sig_lines["Signature"],
                "key_id": verified.key_id,
                "public_key": sig_lines["Public-Key"],
                "origin": verified.origin,
                "schema_version": verified.schema_version,
                "sequence": verified.sequence,
                "previous": verified.previous,
                "kind": verified.kind,
                "trusted_keys": trusted,
                "verified": verified.verified,
                "withheld": verified.withheld,
                "records": [
                    {
                        "path": path,
                        "entity": r.entity,
                        "id": r.id,
                        "origin": r.origin,
                        "revision": r.revision,
                        "deleted": r.deleted,
                        "sha256": hashlib.sha256(render_record(r)).hexdigest(),
                    }
                    for path, r in verified.records
                ],
            }
        )
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")

    cases: list[dict[str, object]] = []
    for name, container, code, make, *rest in invalid_cases():
        limits = rest[0] if rest else {}
        data = make()
        if container == "dir":
            assert isinstance(data, dict)
            rel = f"invalid/{name}"
            write_dir(data, out / rel)
        else:
            assert isinstance(data, bytes)
            rel = f"invalid/{name}.{'cbor' if container == 'cbor' else 'tar.gz'}"
            (out / rel).write_bytes(data)
        check = _failing_check(out / rel, limits)
        if check is None or CHECK_BY_ID[check].code != code:
            raise SystemExit(f"{name}: expected {code}, the reference says {check}")
        case: dict[str, object] = {
            "name": name, "path": rel, "container": container, "code": code, "check": check
        }
        if limits:
            case["limits"] = limits
        cases.append(case)
    # the family, in the order of docs/protocol.md section 6: each check with the
    # vectors that fail it (and pass every check before it)
    family = [
        {
            "check": c.id,
            "code": c.code,
            "terminal": c.terminal,
            "vectors": [case["name"] for case in cases if case["check"] == c.id],
        }
        for c in CHECKS
    ]
    (out / "cases.json").write_text(
        json.dumps(
            {
                "about": "Invalid bundles: each must be rejected with the given error code "
                "(docs/protocol.md lists the codes). Each has exactly one problem: the "
                "check it fails (docs/protocol.md section 6). A case with 'limits' MUST "
                "be judged under those limits (the others at their defaults; "
                "docs/protocol.md section 8). 'checks' lists every check in order with its "
                "vectors.",
                "cases": cases,
                "checks": family,
            },
            indent=2,
        )
        + "\n"
    )


def _failing_check(path: Path, limits: dict[str, int]) -> str | None:
    """The id of the check the reference fails the vector at ``path`` with, under
    ``limits`` (None: it verifies)."""
    chosen = limits_from_mapping(limits)
    try:
        verify_bundle(read_bundle(path, chosen), limits=chosen)
    except ProtocolError as exc:
        return exc.check
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate in a temp dir and compare with the committed vectors",
    )
    args = parser.parse_args(argv)
    if not args.check:
        generate(VECTORS)
        print(f"wrote {VECTORS}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "vectors"
        generate(fresh)
        want = {p.relative_to(fresh): p.read_bytes() for p in fresh.rglob("*") if p.is_file()}
        have = {p.relative_to(VECTORS): p.read_bytes() for p in VECTORS.rglob("*") if p.is_file()}
        if want != have:
            diff = sorted(str(p) for p in set(want) ^ set(have)) + sorted(
                str(p) for p in set(want) & set(have) if want[p] != have[p]
            )
            print("vectors differ from the generator:", *diff[:20], sep="\n  ")
            return 1
    print("vectors are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
