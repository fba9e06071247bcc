// Shares the validated configuration with every other plugin as `fastify.config`.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { RelayConfig } from '../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Readonly<RelayConfig>
  }
}

export interface ConfigPluginOptions {
  config: RelayConfig
}

const configPlugin: FastifyPluginAsync<ConfigPluginOptions> = async (fastify, { config }) => {
  fastify.decorate('config', Object.freeze({ ...config }))
}

export default fp(configPlugin, { name: 'relay-config', fastify: '5.x' })
