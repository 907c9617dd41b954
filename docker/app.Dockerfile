# The apps (native, Hatchet API and workers, downstream, calibration) and the harness's Python.
# Stage `runtime`: Python 3.11 with the pinned dependencies (requirements.lock), no project code; the
# harness's Docker backend runs it with the checkout bind-mounted read-only at its own path.
# Stage `app` (the default): runtime plus the project's code, what docker-compose.yml runs.
# PYTHON_IMAGE is any Debian-based image whose python3 is 3.11 (tests here use one built from Debian's
# packages); docker/wheels/ may hold the pinned wheels (the harness fills it; PIP_NO_INDEX=1 then
# installs from it alone, with no network in the build; it also holds what the lock's packages need on
# this image's Python only, e.g. async-timeout for redis on Debian's 3.11.2).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS runtime
ARG PIP_NO_INDEX=
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
COPY requirements.lock /tmp/harness/requirements.lock
COPY docker/wheels/ /tmp/harness/wheels/
RUN python3 -m venv /opt/venv \
 && PIP_FIND_LINKS=/tmp/harness/wheels /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      -r /tmp/harness/requirements.lock \
 && rm -rf /tmp/harness

FROM runtime AS app
WORKDIR /app
COPY pyproject.toml /app/
COPY apps /app/apps
COPY harness /app/harness
ENV PYTHONPATH=/app
