# syntax=docker/dockerfile:1
# nats-deploy images: one build, two runnable targets.
#
#   docker build --target coordinator -t nats-deploy/coordinator .
#   docker build --target agent       -t nats-deploy/agent .
#
# `docker build .` without --target gives the coordinator (the last stage).
# Both images carry all three executables on PATH (deploy-coordinator,
# deploy-agent, deployctl); the target only picks the ENTRYPOINT.

# ---------------------------------------------------------------- build
FROM node:20-slim AS build
WORKDIR /src
# Dependencies first: this layer is reused while only sources change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY services ./services
COPY scripts ./scripts
RUN npm run build

# ---------------------------------------------------------------- production dependencies
FROM node:20-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---------------------------------------------------------------- runtime
FROM node:20-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# package.json is needed at run time: its "type": "module" makes dist/*.js ESM,
# and deployctl reads its version from it.
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist/services ./dist/services
# The web dashboard the coordinator serves when http.listen is set.
COPY --from=build /src/dist/dashboard ./dist/dashboard
COPY proto ./proto
COPY package.json ./
# tsc does not set the executable bit; the files start with #!/usr/bin/env node.
# The agent's state and release dirs are owned by the unprivileged user, so a
# named volume mounted there starts with that owner.
RUN chmod 0755 dist/services/coordinator/src/main.js dist/services/agent/src/main.js dist/services/deployctl/src/main.js \
 && ln -s /app/dist/services/coordinator/src/main.js /usr/local/bin/deploy-coordinator \
 && ln -s /app/dist/services/agent/src/main.js /usr/local/bin/deploy-agent \
 && ln -s /app/dist/services/deployctl/src/main.js /usr/local/bin/deployctl \
 && mkdir -p /var/lib/deploy-agent /srv/deploy \
 && chown node:node /var/lib/deploy-agent /srv/deploy
# The image's own unprivileged user (uid 1000). Nothing here needs root; an
# agent whose hooks must manage system services belongs on a VM under systemd
# (deploy/systemd/), not in this container.
USER node

# ---------------------------------------------------------------- agent
FROM runtime AS agent
VOLUME ["/var/lib/deploy-agent", "/srv/deploy"]
ENTRYPOINT ["deploy-agent"]

# ---------------------------------------------------------------- coordinator (default)
FROM runtime AS coordinator
ENV DEPLOY_GRPC_LISTEN=0.0.0.0:50051
EXPOSE 50051
ENTRYPOINT ["deploy-coordinator"]
