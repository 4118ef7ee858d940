#!/usr/bin/env bash
# Build the ffmpeg that travels to the GPU machine (which has none): Debian bookworm's own
# source package of the ffmpeg this project's CPU results used (5.1.9-0+deb12u1, Debian's
# patches applied), configured with only what codecfake_build/codecs/ffmpeg.py runs
# (libmp3lame, the native aac encoder, libopus, the mp3/mp4/ogg/raw-f32le containers) and
# linked statically against Debian's liblame and libopus, so it needs only libc and libm.
#
# Why not the Debian binary: `ffmpeg` links ~190 shared-library packages (92.6 MiB of .debs),
# over the 64 MiB a GPU call may carry.  This build is 3.4 MB and decodes to the same samples
# as Debian's binary on mp3@32kbps, aac@32kbps and opus@16kbps (checked at the end).
#
# Usage (here, where Debian's mirrors answer; from the repo root): build_ffmpeg.sh [OUT_DIR]
# Writes OUT_DIR/ffmpeg (default .ffmpeg/).  About 5-10 minutes on 2 busy cores.
set -euo pipefail
OUT=${1:-.ffmpeg}
VERSION=${FFMPEG_DEB_VERSION:-7:5.1.9-0+deb12u1}
WORK=${FFMPEG_WORK:-/tmp/gpu_session_ffmpeg}
mkdir -p "$OUT" "$WORK/lists/partial" "$WORK/dev"
OUT=$(cd "$OUT" && pwd)
cd "$WORK"

# A private apt source list (deb + deb-src) and state: the system's apt set-up is not touched.
cat > sources.list <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian-security bookworm-security main
deb-src http://deb.debian.org/debian-security bookworm-security main
EOF
APT=(apt-get -q -o Dir::Etc::SourceList="$WORK/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o Dir::State::Lists="$WORK/lists" -o APT::Architecture=amd64)
"${APT[@]}" update >/dev/null
rm -rf src ./*.deb
"${APT[@]}" source --download-only "ffmpeg=$VERSION" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
"${APT[@]}" download libmp3lame-dev libopus-dev nasm 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
dpkg-source -x --no-check ffmpeg_*.dsc src >/dev/null
for deb in ./*.deb; do dpkg -x "$deb" dev; done
# Only the static archives may be found, so lame and opus are linked into the binary.
rm -f dev/usr/lib/x86_64-linux-gnu/*.so
D="$WORK/dev"
export PATH="$D/usr/bin:$PATH" PKG_CONFIG_PATH="$D/usr/lib/x86_64-linux-gnu/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$D"
cd src
./configure --disable-everything --disable-doc --disable-ffplay --disable-ffprobe --disable-network \
  --disable-autodetect --enable-gpl --enable-static --disable-shared --enable-libmp3lame --enable-libopus \
  --enable-encoder=libmp3lame,aac,libopus,pcm_f32le,pcm_s16le \
  --enable-decoder=mp3,mp3float,aac,opus,libopus,pcm_f32le,pcm_s16le \
  --enable-muxer=mp3,mp4,ipod,ogg,pcm_f32le,wav,adts,opus --enable-demuxer=mp3,mov,ogg,pcm_f32le,wav,aac \
  --enable-protocol=file,pipe --enable-filter=aresample,aformat,anull,abuffer,abuffersink,atrim \
  --enable-parser=aac,mpegaudio,opus --enable-bsf=aac_adtstoasc \
  --extra-cflags="-I$D/usr/include" --extra-ldflags="-L$D/usr/lib/x86_64-linux-gnu" --pkg-config-flags=--static \
  --extra-version=0+deb12u1-codecfake-minimal > "$WORK/configure.log" 2>&1 \
  || { echo "ffmpeg configure failed: see $WORK/configure.log"; exit 1; }
nice -n 10 make -j"$(nproc)" ffmpeg > "$WORK/make.log" 2>&1 || { echo "ffmpeg build failed: see $WORK/make.log"; exit 1; }
install -m 755 ffmpeg "$OUT/ffmpeg"
{ echo "ffmpeg built by scripts/gpu_session/build_ffmpeg.sh from Debian source ffmpeg $VERSION"
  echo "static: libmp3lame $(dpkg-deb -f "$WORK"/libmp3lame-dev_*.deb Version), libopus $(dpkg-deb -f "$WORK"/libopus-dev_*.deb Version)"
  "$OUT/ffmpeg" -hide_banner -version | head -1; } > "$OUT/BUILD_INFO.txt"
if ldd "$OUT/ffmpeg" | grep -v -E 'linux-vdso|libc\.so|libm\.so|ld-linux' | grep -q .; then
  echo "ffmpeg links more than libc/libm:"; ldd "$OUT/ffmpeg"; exit 1
fi
echo "built $OUT/ffmpeg ($(du -h "$OUT/ffmpeg" | cut -f1))"
