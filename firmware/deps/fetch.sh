#!/usr/bin/env bash
# fetch.sh — get meshlet's dependency sources from Debian's source archive,
# verify them against pins.sh, unpack them and apply the Debian patches we want.
#
# Usage: firmware/deps/fetch.sh [--refresh | --check]
#   --refresh (or MESHLET_FETCH_REFRESH=1): ask the archive again even when
#             the cache is complete, e.g. to pick up a new Debian security
#             revision. Without it, a complete cache means no network at all.
#   --check   change nothing: exit 0 if every tree is downloaded, verified and
#             prepared by THIS recipe (its patches), else 1. build.sh runs it
#             while it holds the cache's shared lock (see there).
#
# Result, under $CACHE/src ($CACHE = ${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}):
#   *.orig.tar.*, *.debian.tar.xz     the downloaded files
#   NAME.fetch                        which Debian revision we got (sourceable)
#   NAME-VERSION/                     unpacked orig + debian/ + applied patches
#   PATCHES.txt                       per package: revision, patches applied/skipped
#
# Our own patches, patches/NAME/*.patch (-p1, in name order), are applied after
# Debian's; each says why in its header (README.md "meshlet's own patches").
#   apt/                              the PRIVATE apt state (lists + sources)
#
# Why a private apt state: we need trixie's *source* index on a bookworm host
# without touching the system's sources or caches (Dir::Cache::pkgcache= and
# srcpkgcache= stop apt from writing a binary cache built from our lists into
# /var/cache/apt).
set -Eeuo pipefail
# set -e exits silently; say where (-E: also inside functions).
trap 'printf "fetch: ERROR: unexpected failure (exit %s) at fetch.sh line %s\n" "$?" "$LINENO" >&2' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=pins.sh
. "$HERE/pins.sh"

CACHE=${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}
SRC=$CACHE/src
APTDIR=$SRC/apt
REFRESH=${MESHLET_FETCH_REFRESH:-0}
CHECK=0
case "${1:-}" in
	--refresh) REFRESH=1 ;;
	--check) CHECK=1 ;;
	"") ;;
	*) echo "usage: $0 [--refresh | --check]" >&2; exit 2 ;;
esac

log() { printf 'fetch: %s\n' "$*" >&2; }
die() { printf 'fetch: ERROR: %s\n' "$*" >&2; exit 1; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$SRC"
# Locking: build.sh for several boards may run in parallel and all call us,
# and each holds $SRC/.lock *shared* while it compiles from the trees. We
# check under a shared lock too (so an up-to-date cache never waits for a
# running build) and take it exclusively only to download or re-unpack.
exec 9>"$SRC/.lock"
flock -s 9

# ---------------------------------------------------------------------------
# Debian patch policy (WHY per package: see README.md "Debian patches")
#   all   apply the whole debian/patches/series, in series order
#   lib   apply only the patches that touch lib/ (the library we compile)
#   none  apply nothing
# ---------------------------------------------------------------------------
declare -A POLICY=(
	[libwebsockets]=all   # security fixes (server.c, async-dns, hpack, lecp); all apply cleanly
	[nghttp2]=lib         # CVE fix in lib/nghttp2_session.c; the rest is docs/tests
	[mbedtls]=none        # gcc-14 build fix + 3rdparty/ drop: irrelevant with gcc 12 + default config
	[libinih]=none        # Debian's patches change the API/ABI (forced HANDLER_LINENO, runtime opts)
	[nanopb]=none         # used as is (Debian's patches were not even downloadable)
	[cmocka]=none         # test-only dependency; upstream as is
)

# A fresh, self-contained apt configuration. Lists live under the cache so
# they survive between runs and never mix with the system's.
APT=(
	-o "Dir::Etc::SourceList=/dev/null"
	-o "Dir::Etc::SourceParts=$APTDIR/parts"
	-o "Dir::State::Lists=$APTDIR/lists"
	-o "Dir::Cache::pkgcache="
	-o "Dir::Cache::srcpkgcache="
	# We run as root into a root-owned cache; without this apt warns that
	# its _apt sandbox user cannot write there and downloads as root anyway.
	-o "APT::Sandbox::User=root"
	-q
)
BASES=("$DEBIAN_MIRROR" "$DEBIAN_SECURITY_MIRROR")

apt_setup() {
	mkdir -p "$APTDIR/lists/partial" "$APTDIR/parts"
	cat >"$APTDIR/parts/meshlet-src.sources" <<-EOF
		Types: deb-src
		URIs: $DEBIAN_MIRROR
		Suites: $DEBIAN_SUITE
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb-src
		URIs: $DEBIAN_SECURITY_MIRROR
		Suites: $DEBIAN_SECURITY_SUITE
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	log "apt-get update (private trixie + trixie-security deb-src lists in $APTDIR)"
	apt-get "${APT[@]}" update >&2 || die "apt-get update of the private source lists failed"
}

# Print "VERSION DIRECTORY SHA256 FILENAME" for every file of every source
# record of package $1 in the private index (a package can have several
# records: one per suite, possibly the same version in both).
src_records() {
	apt-cache "${APT[@]}" showsrc "$1" 2>/dev/null | awk '
		function flush(   i) {
			if (v != "" && d != "") for (i = 1; i <= n; i++) print v, d, f[i]
			v = ""; d = ""; n = 0; insha = 0
		}
		/^$/                 { flush(); next }
		/^ / && insha        { f[++n] = $1 " " $3; next }
		                     { insha = 0 }
		/^Version:/          { v = $2 }
		/^Directory:/        { d = $2 }
		/^Checksums-Sha256:/ { insha = 1 }
		END                  { flush() }'
}

# Our own patches of NAME, in the order they apply (C-locale name order), one path a line.
meshlet_patches() {
	local d=$HERE/patches/$1
	[ -d "$d" ] || return 0
	find "$d" -maxdepth 1 -type f -name '*.patch' | LC_ALL=C sort
}

# upstream part of a Debian version: strip the epoch and the -revision.
upstream_of() { local v=${1#*:}; printf '%s\n' "${v%-*}"; }

# Sort Debian versions, newest first, using dpkg's own ordering.
sort_versions_desc() {
	local -a in out=()
	mapfile -t in
	local v i placed
	for v in "${in[@]}"; do
		placed=0
		for i in "${!out[@]}"; do
			if dpkg --compare-versions "$v" gt "${out[$i]}"; then
				out=("${out[@]:0:$i}" "$v" "${out[@]:$i}"); placed=1; break
			fi
		done
		[ "$placed" = 1 ] || out+=("$v")
	done
	[ "${#out[@]}" -eq 0 ] || printf '%s\n' "${out[@]}"
}

# get_file NAME SHA256 DIR... : make $SRC/NAME exist with that hash. Tries each
# pool DIRECTORY on each mirror through apt's own downloader (same proxy and
# transport config as apt, hash-checked by apt). Returns 1 if nowhere had it.
get_file() {
	local name=$1 sum=$2 dir base
	shift 2
	if [ -f "$SRC/$name" ] && [ "$(sha256 "$SRC/$name")" = "$sum" ]; then
		return 0
	fi
	for dir in "$@"; do
		for base in "${BASES[@]}"; do
			rm -f "$SRC/$name.part"
			if /usr/lib/apt/apt-helper "${APT[@]}" download-file \
				"$base/$dir/$name" "$SRC/$name.part" "SHA256:$sum" >&2 2>/dev/null; then
				mv -f "$SRC/$name.part" "$SRC/$name"
				return 0
			fi
		done
	done
	rm -f "$SRC/$name.part"
	return 1
}

# fetch_one NAME: orig tarball (verified against the pin) + the newest
# .debian.tar.* the archive actually serves; writes $SRC/NAME.fetch.
fetch_one() {
	local name=$1 up=${PIN_VERSION[$1]} orig=${PIN_ORIG[$1]} want=${PIN_SHA256[$1]}
	local recs versions best v got deb_file="" deb_sum="" deb_ver="" note=""
	recs=$(src_records "$name")
	[ -n "$recs" ] || die "$name: no source package in $DEBIAN_SUITE/$DEBIAN_SECURITY_SUITE"
	# Only records of the pinned upstream version count.
	versions=$(while read -r v _; do
		if [ "$(upstream_of "$v")" = "$up" ]; then echo "$v"; fi
	done <<<"$recs" | sort -u | sort_versions_desc)
	if [ -z "$versions" ]; then
		die "$name: the archive no longer has upstream $up (it has: $(cut -d' ' -f1 <<<"$recs" | sort -u | tr '\n' ' ')); change the pin (README.md)"
	fi
	best=$(head -n1 <<<"$versions")
	log "$name: archive serves $(tr '\n' ' ' <<<"$versions")-> apt-get source --download-only $name=$best"

	# The ordinary way first. It fails as a whole when any single file 404s
	# (the archive often lacks the .dsc), but keeps whatever it did download.
	(cd "$SRC" && apt-get "${APT[@]}" source --download-only "$name=$best" >&2) ||
		log "$name: apt-get source could not get every file (expected; falling back file by file)"

	# Orig tarball: any pool directory that lists it will do (lws's is only in
	# the main pool although the security record is chosen first).
	local -a dirs
	mapfile -t dirs < <(awk -v f="$orig" '$4 == f { print $2 }' <<<"$recs" | sort -u)
	if [ "${#dirs[@]}" -eq 0 ]; then
		die "$name: no record of $up lists $orig"
	fi
	local idx_sum
	idx_sum=$(awk -v f="$orig" '$4 == f { print $3; exit }' <<<"$recs")
	get_file "$orig" "$idx_sum" "${dirs[@]}" || [ -f "$SRC/$orig" ] ||
		die "$name: could not download $orig from any pool directory"
	got=$(sha256 "$SRC/$orig")
	if [ "$got" != "$want" ]; then
		die "$name: SHA-256 mismatch for $SRC/$orig: expected $want (pins.sh), got $got"
	fi

	# Debian tarball: newest revision whose .debian.tar.* we can actually get.
	local f s
	for v in $versions; do
		f="" s=""
		read -r f s < <(awk -v v="$v" '$1 == v && $4 ~ /\.debian\.tar\./ { print $4, $3; exit }' <<<"$recs") || true
		[ -n "${f:-}" ] || continue
		mapfile -t dirs < <(awk -v v="$v" -v f="$f" '$1 == v && $4 == f { print $2 }' <<<"$recs" | sort -u)
		if get_file "$f" "$s" "${dirs[@]}"; then
			deb_ver=$v deb_file=$f deb_sum=$s
			[ "$v" = "$best" ] || note="newest $best: its debian tarball is not downloadable (404); used $v"
			break
		fi
		log "$name: $f is not downloadable (404)"
	done
	if [ -z "$deb_file" ]; then
		deb_ver=$best deb_file=none deb_sum=none
		note="no .debian.tar.* of any revision is downloadable (404): upstream sources only"
	fi
	log "$name: orig OK ($want), Debian revision $deb_ver, debian tarball $deb_file"
	{
		printf 'DEB_VERSION=%q\n' "$deb_ver"
		printf 'DEB_TARBALL=%q\n' "$deb_file"
		printf 'DEB_SHA256=%q\n' "$deb_sum"
		printf 'DEB_NOTE=%q\n' "$note"
		printf 'FETCHED_AT=%q\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$SRC/$name.fetch.tmp"
	mv -f "$SRC/$name.fetch.tmp" "$SRC/$name.fetch"
}

# Is NAME complete in the cache (pinned orig + what we recorded last time)?
cached_ok() {
	# shellcheck disable=SC2034  # sourced below; only some are used
	local name=$1 DEB_VERSION DEB_TARBALL DEB_SHA256 DEB_NOTE FETCHED_AT
	[ -f "$SRC/${PIN_ORIG[$name]}" ] && [ -f "$SRC/$name.fetch" ] || return 1
	[ "$(sha256 "$SRC/${PIN_ORIG[$name]}")" = "${PIN_SHA256[$name]}" ] || return 1
	# shellcheck disable=SC1090
	. "$SRC/$name.fetch"
	[ "$DEB_TARBALL" = none ] && return 0
	[ -f "$SRC/$DEB_TARBALL" ] && [ "$(sha256 "$SRC/$DEB_TARBALL")" = "$DEB_SHA256" ]
}

# Patches of series file order, as "NAME -pN" (quilt allows a -pN option).
series_patches() {
	sed -e 's/#.*//' "$1" | awk 'NF { p = "-p1"; for (i = 2; i <= NF; i++) if ($i ~ /^-p[0-9]+$/) p = $i; print $1, p }'
}

# Does the patch touch anything under lib/ (after stripping the a/ b/ or
# pkg-version/ leading component)?
touches_lib() {
	grep -E '^\+\+\+ ' "$1" | awk '{ print $2 }' | sed -e 's#^[^/]*/##' | grep -q '^lib/'
}

# prepare NAME: unpack orig + debian/ into $SRC/NAME-VERSION and apply the
# patches the policy selects. Idempotent: a stamp keyed on the inputs (orig,
# debian tarball, this script, pins.sh) skips the work when nothing changed.
# The key of NAME's unpacked tree: its inputs (orig, debian tarball, policy,
# this script + pins.sh, which hold the unpack/patch recipe, and our own
# patches of NAME by name and content).
prepare_key() {
	local DEB_SHA256 p
	# shellcheck disable=SC1090
	DEB_SHA256=$(. "$SRC/$1.fetch"; echo "$DEB_SHA256")
	{
		printf '%s\n' "${PIN_SHA256[$1]}" "$DEB_SHA256" "${POLICY[$1]}" \
			"$(sha256 "$HERE/fetch.sh")" "$(sha256 "$HERE/pins.sh")"
		while IFS= read -r p; do
			printf '%s %s\n' "$(basename "$p")" "$(sha256 "$p")"
		done < <(meshlet_patches "$1")
	} | sha256sum | cut -c1-64
}
prepared_ok() {
	local stamp
	stamp=$SRC/$(pin_srcdir "$1")/.meshlet-prepared
	[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(prepare_key "$1")" ]
}

prepare() {
	# shellcheck disable=SC2034  # FETCHED_AT: sourced, only kept local
	local name=$1 dir tmp key DEB_VERSION DEB_TARBALL DEB_SHA256 DEB_NOTE FETCHED_AT
	prepared_ok "$name" && return 0
	# shellcheck disable=SC1090
	. "$SRC/$name.fetch"
	dir=$SRC/$(pin_srcdir "$name")
	key=$(prepare_key "$name")
	log "$name: unpacking into $dir"
	tmp=$dir.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp"
	# Every orig tarball has exactly one top directory; its name varies
	# (inih-r59), so strip it and use our own name.
	tar -xf "$SRC/${PIN_ORIG[$name]}" -C "$tmp" --strip-components=1
	local applied=() skipped=() p opt
	if [ "$DEB_TARBALL" != none ]; then
		rm -rf "$tmp/debian"     # as dpkg-source does: Debian's debian/ wins
		tar -xf "$SRC/$DEB_TARBALL" -C "$tmp"
		if [ -f "$tmp/debian/patches/series" ]; then
			while read -r p opt; do
				local use=0
				case "${POLICY[$name]}" in
					all) use=1 ;;
					lib) touches_lib "$tmp/debian/patches/$p" && use=1 ;;
					none) ;;
					*) die "$name: unknown patch policy ${POLICY[$name]}" ;;
				esac
				if [ "$use" = 1 ]; then
					# A patch that does not apply is a hard error: it means the
					# revision changed under us and someone must look.
					patch "$opt" --forward --batch --no-backup-if-mismatch -s -d "$tmp" \
						<"$tmp/debian/patches/$p" >&2 ||
						die "$name: Debian patch $p does not apply to ${PIN_ORIG[$name]}"
					applied+=("$p")
				else
					skipped+=("$p")
				fi
			done < <(series_patches "$tmp/debian/patches/series")
		fi
	fi
	# Ours last: they are written against the Debian-patched tree. One that does
	# not apply is a hard error too (a new pin or Debian revision moved the code).
	local ours=()
	while IFS= read -r p; do
		patch -p1 --forward --batch --no-backup-if-mismatch -s -d "$tmp" <"$p" >&2 ||
			die "$name: our patch ${p#"$HERE"/} does not apply (update it for ${PIN_ORIG[$name]})"
		ours+=("$(basename "$p")")
	done < <(meshlet_patches "$name")
	{
		echo "[$name]"
		echo "upstream        = ${PIN_VERSION[$name]} (${PIN_ORIG[$name]}, sha256 ${PIN_SHA256[$name]})"
		echo "debian revision = $DEB_VERSION"
		echo "debian tarball  = $DEB_TARBALL"
		[ -z "$DEB_NOTE" ] || echo "note            = $DEB_NOTE"
		echo "policy          = ${POLICY[$name]}"
		echo "applied         = ${applied[*]:-(none)}"
		echo "not applied     = ${skipped[*]:-(none)}"
		echo "meshlet patches = ${ours[*]:-(none)}"
		echo
	} >"$tmp/.meshlet-patches"
	printf '%s\n' "$key" >"$tmp/.meshlet-prepared"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	log "$name: applied: ${applied[*]:-(none)}; ours: ${ours[*]:-(none)}"
}

# ---------------------------------------------------------------------------
# Fast path, under the shared lock: everything downloaded, verified, unpacked.
ready=1
for n in "${PIN_NAMES[@]}"; do
	if ! cached_ok "$n" || ! prepared_ok "$n"; then ready=0; break; fi
done
if [ "$CHECK" = 1 ]; then
	[ "$ready" = 1 ] && [ -f "$SRC/PATCHES.txt" ] && exit 0
	log "the trees in $SRC are not (or no longer) this recipe's"
	exit 1
fi
if [ "$REFRESH" = 0 ] && [ "$ready" = 1 ] && [ -f "$SRC/PATCHES.txt" ]; then
	log "all pinned sources present, verified and unpacked in $SRC: no network"
	exit 0
fi
flock -x 9   # from here on we change the cache

need_net=0
for n in "${PIN_NAMES[@]}"; do
	cached_ok "$n" || { need_net=1; break; }
done
if [ "$need_net" = 1 ] || [ "$REFRESH" = 1 ]; then
	command -v apt-get >/dev/null || die "apt-get not found (Debian host required; run firmware/setup-host.sh)"
	apt_setup
	for n in "${PIN_NAMES[@]}"; do
		if [ "$REFRESH" = 1 ] || ! cached_ok "$n"; then
			fetch_one "$n"
		fi
	done
else
	log "all pinned tarballs present and verified in $SRC: no network"
fi

for n in "${PIN_NAMES[@]}"; do
	prepare "$n"
done

{
	echo "# Written by firmware/deps/fetch.sh: which Debian revision each pinned"
	echo "# dependency came with and which of its patches were applied."
	echo
	for n in "${PIN_NAMES[@]}"; do
		cat "$SRC/$(pin_srcdir "$n")/.meshlet-patches"
	done
} >"$SRC/PATCHES.txt.tmp"
mv -f "$SRC/PATCHES.txt.tmp" "$SRC/PATCHES.txt"
log "sources ready in $SRC (see $SRC/PATCHES.txt)"
