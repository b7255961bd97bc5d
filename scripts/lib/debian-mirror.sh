# Sourced by scripts that debootstrap Debian (build-image, check-fresh-debian).
# debian_mirror SUITE prints the mirror this machine's apt sources use for SUITE (the first
# one found), or SAM_DEBIAN_MIRROR when set; nothing when there is none.

debian_mirror() {
  local suite=$1 file
  if [[ -n "${SAM_DEBIAN_MIRROR:-}" ]]; then
    echo "$SAM_DEBIAN_MIRROR"
    return
  fi
  {
    # deb822 .sources files: the URIs of a stanza whose Suites has the plain suite name.
    for file in /etc/apt/sources.list.d/*.sources; do
      [[ -f "$file" ]] || continue
      awk -v suite="$suite" '
        /^[[:space:]]*$/ { if (uri != "" && hit) { print uri; exit } uri = ""; hit = 0; next }
        /^URIs:/ { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
        END { if (uri != "" && hit) print uri }
      ' "$file"
    done
    # one-line format: deb [options] URI SUITE COMPONENTS...
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -f "$file" ]] || continue
      awk -v suite="$suite" '
        $1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                      if ($(i + 1) == suite) print $i }
      ' "$file"
    done
  } | head -n 1
}
