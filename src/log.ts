import winston from 'winston';

const textFormat = winston.format.combine(
  winston.format.timestamp(),
  winston.format.printf(({ timestamp, level, message, ...meta }) => {
    const rest = Object.keys(meta).length > 0 ? ` ${JSON.stringify(meta)}` : '';
    return `${String(timestamp)} ${level} ${String(message)}${rest}`;
  }),
);

/** One JSON object per line (ts, level, msg, fields), as log collectors expect from an operator. */
const jsonFormat = winston.format.combine(
  winston.format.timestamp(),
  winston.format((info) => {
    info['ts'] = info['timestamp'];
    info['msg'] = info.message;
    delete info['timestamp'];
    return Object.assign(info, { message: undefined });
  })(),
  winston.format.json(),
);

export type LogFormat = 'text' | 'json';

/** The process-wide logger: lines on stderr, so stdout stays free for results. LOG_FORMAT=json for JSON. */
export const logger = winston.createLogger({
  level: process.env['LOG_LEVEL'] ?? 'info',
  format: process.env['LOG_FORMAT'] === 'json' ? jsonFormat : textFormat,
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
});

export function setLogFormat(format: LogFormat): void {
  logger.format = format === 'json' ? jsonFormat : textFormat;
}
