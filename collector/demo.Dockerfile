# The mlotel demo as a container (built by docker-compose.yaml from the repository root).
FROM python:3.12-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".[demo]"
WORKDIR /work
CMD ["mlotel", "demo", "--duration", "86400", "--host", "0.0.0.0"]
