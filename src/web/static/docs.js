// Swagger UI over /openapi.json, from the embedded swagger-ui-dist bundle. The validator badge is
// off: it would send the document to validator.swagger.io.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    persistAuthorization: false,
    tryItOutEnabled: false,
    displayRequestDuration: true,
  });
});
