const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `value` can be an id of runyard's (a UUID): anything else names nothing, and never reaches a `::uuid` cast. */
export const isUuid = (value: string): boolean => UUID.test(value);
