// @ts-check
// The offline page: try again by itself when the network is back.
window.addEventListener('online', () => location.reload());
