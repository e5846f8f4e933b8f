FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY tasks ./tasks
COPY examples ./examples
RUN pip install --no-cache-dir . && useradd --create-home oppsync
USER oppsync
CMD ["celery", "-A", "worker", "worker", "--loglevel", "INFO"]
