import type { ReconnectPolicy } from './types.js';

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
const MAX_ATTEMPTS = 10;

/** 1 s doubling to 30 s, each shortened by up to a quarter so clients refused together spread out. */
export const defaultReconnect: ReconnectPolicy = (attempt) => {
  if (attempt > MAX_ATTEMPTS) return false;
  const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1));
  return Math.round(delay * (1 - Math.random() / 4));
};
