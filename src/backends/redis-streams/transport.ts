/**
 * What a Redis-streams backend sends its commands through: the Upstash REST client, ioredis on
 * one Redis, or ioredis on a Redis Cluster. What each command's reply means is in commands/.
 */
import type { CallOptions } from '../contract.js';

/** A command as sent: its name, then its arguments. */
export type RedisCommand = (string | number)[];
export type RedisReply = string | number | null | RedisReply[];

/** Sends commands in one round trip; each reply is a value or the error Redis gave for it. */
export interface RedisTransport {
  pipeline(commands: RedisCommand[], options?: CallOptions): Promise<(RedisReply | Error)[]>;
}
