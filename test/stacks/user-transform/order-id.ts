/** The document id of an order line, from a module that the transform imports. */
export function orderDocumentId(order: string, line: string): string {
  return `order-line:${order}/${line}`;
}
