// pgpass (from the node-postgres project) ships no types.
declare module 'pgpass' {
  interface ConnectionInfo {
    host?: string;
    port?: number | string;
    database?: string;
    user?: string;
  }
  function pgpass(info: ConnectionInfo, callback: (password?: string) => void): void;
  export default pgpass;
}
