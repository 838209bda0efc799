// Swagger UI on the gateway's own OpenAPI document. A served file, not an inline script: the page's CSP allows
// only the gateway's own scripts. No validator badge: it would call validator.swagger.io.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
