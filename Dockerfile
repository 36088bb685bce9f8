# ssrelay: one small container beside Secret Server.
#   docker build -t ssrelay .
#   docker run -d --name ssrelay -p 3000:3000 -v ssrelay-data:/data \
#     -e SSRELAY_SECRET_SERVER_BASE_URL=https://ss.example.com/SecretServer \
#     -e SSRELAY_SECRET_SERVER_USERNAME=svc-slack-relay -e SSRELAY_SECRET_SERVER_PASSWORD=... \
#     -e SSRELAY_SLACK_BOT_TOKEN=xoxb-... -e SSRELAY_SLACK_SIGNING_SECRET=... \
#     -e SSRELAY_HTTP_PUBLIC_URL=https://relay.example.com -e SSRELAY_STORAGE_ENCRYPTION_KEY=... ssrelay
# Other commands: docker run --rm ... ssrelay check | manifest | status | backup /data/backup.db
FROM python:3.11-slim

LABEL org.opencontainers.image.title="ssrelay" \
      org.opencontainers.image.description="Relays Delinea Secret Server access requests into Slack" \
      org.opencontainers.image.version="0.2.0" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY relay ./relay
COPY migrations ./migrations
# constraints.txt pins every dependency (pip freeze of a clean install): rebuilds are reproducible.
RUN pip install -c constraints.txt . && rm -rf /app

# Not root: a fixed uid/gid that owns nothing but the data volume. USER names it by number so
# Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 ssrelay \
 && useradd --system --uid 10001 --gid ssrelay --home-dir /data --no-create-home --shell /usr/sbin/nologin ssrelay \
 && mkdir -p /data && chown ssrelay:ssrelay /data

# Config by environment (SSRELAY_<SECTION>_<KEY>); secrets may also come as files
# (SSRELAY_<SECTION>_<KEY>_FILE=/run/secrets/...). No config file is needed.
ENV SSRELAY_STORAGE_PATH=/data/ssrelay.db \
    SSRELAY_HTTP_HOST=0.0.0.0 \
    SSRELAY_HTTP_PORT=3000

VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SSRELAY_HTTP_PORT', '3000'), timeout=4)"]

ENTRYPOINT ["ssrelay"]
CMD ["run"]
