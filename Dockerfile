# The cityloop image: one image, two roles (worker, api) chosen by the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cityloop cityloop
COPY streams streams
COPY handlers handlers
COPY topology topology
COPY api api
RUN pip install --no-cache-dir . && useradd --system cityloop && mkdir -p /var/lib/cityloop \
    && chown cityloop /var/lib/cityloop
USER cityloop
ENV CITYLOOP_DATA_DIR=/var/lib/cityloop
ENTRYPOINT ["cityloop"]
