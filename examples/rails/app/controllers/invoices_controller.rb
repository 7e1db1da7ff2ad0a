# frozen_string_literal: true

# Reads the caller's SPIFFE ID that Spiffe::Rack::JWTAuth authenticated.
class InvoicesController < ActionController::API
  def index
    render plain: "invoices for #{request.env['spiffe.id']}\n"
  end
end
